"""The store's worker threads: every query runs here, never on the event loop.

Each thread owns one database connection for its whole life. Calls run by priority (lower first), in arrival
order within a priority: a lease renewal goes ahead of everything, and a member's request waiting inside
Discord's 3-second window ahead of the runner's steady stream of progress writes. SQLite gets one thread (one
writer keeps every check-then-write atomic and the file free of lock contention); PostgreSQL gets a few, each
with its own connection.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

log = logging.getLogger("bot.store")

R = TypeVar("R")
C = TypeVar("C")  # what each thread holds: a connection wrapper

# Lease renewals go first of all: one that waits past the lease hands a live process's jobs to another.
LEASES, INTERACTIVE, BACKGROUND = -1, 0, 1
_STOP = BACKGROUND + 1


class Worker(Generic[C]):
    def __init__(
        self, connect: Callable[[], C], close: Callable[[C], None], threads: int = 1, name: str = "store"
    ) -> None:
        self._connect = connect
        self._close = close
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[C], Any] | None, Future[Any] | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._ready: list[Future[None]] = []
        self._threads: list[threading.Thread] = []
        for n in range(threads):
            ready: Future[None] = Future()
            thread = threading.Thread(
                target=self._loop, args=(ready,), name=f"{name}-{n}" if threads > 1 else name, daemon=True
            )
            self._ready.append(ready)
            self._threads.append(thread)
            thread.start()

    def wait_ready(self) -> None:
        """Block until every thread has connected; raise the first connection error."""
        for ready in self._ready:
            ready.result()

    def submit(self, call: Callable[[C], R], priority: int) -> Future[R]:
        future: Future[R] = Future()
        self._queue.put((priority, next(self._order), call, future))
        return future

    def _loop(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            while True:
                _, _, call, future = self._queue.get()
                if call is None or future is None:
                    return
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(call(conn))
                except BaseException as exc:  # handed to the awaiting coroutine
                    future.set_exception(exc)
        finally:
            try:
                self._close(conn)
            except Exception:
                log.exception("closing a store connection failed")

    def shutdown(self) -> None:
        """Finish what is queued, then stop every thread and close its connection."""
        for _ in self._threads:
            self._queue.put((_STOP, next(self._order), None, None))
        for thread in self._threads:
            thread.join()
