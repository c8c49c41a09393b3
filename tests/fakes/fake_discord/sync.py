"""Make the test-facing API usable from the fake's own event loop (async tests) and from any other thread
(threaded fake + bot subprocess).

* `@on_loop` sync methods run on the fake's loop: directly when already there (or not started yet),
  otherwise submitted to it and waited for. State is therefore only ever mutated on one thread.
* `@waitable` async methods return a coroutine on the fake's loop (so you `await` them) and block and
  return the result when called from any other thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def on_loop(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        loop: asyncio.AbstractEventLoop | None = self._fake_loop()
        if loop is None or loop is current_loop() or not loop.is_running():
            return fn(self, *args, **kwargs)

        async def call() -> Any:
            return fn(self, *args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(60)

    return wrapper  # type: ignore[return-value]


def waitable(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        loop: asyncio.AbstractEventLoop | None = self._fake_loop()
        coro = fn(self, *args, **kwargs)
        if loop is None or loop is current_loop() or not loop.is_running():
            return coro
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    return wrapper  # type: ignore[return-value]
