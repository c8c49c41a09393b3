"""Run an aiohttp web application on loopback, either in the caller's event loop or in its own thread.

The threaded form lets synchronous tests, subprocess-driven end-to-end tests and the benchmark share one
fake server whose state the test can read directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web


class LoopbackServer:
    """Serve `app` on 127.0.0.1 at an OS-chosen port. Use `async with` or `with` (threaded)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self.loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Threaded use -----------------------------------------------------------------------------------
    def start_in_thread(self) -> str:
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name=f"fake-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self.url

    def stop_thread(self) -> None:
        if self._thread is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self._thread = None

    def call(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, timeout: float = 10) -> Any:
        """Run a coroutine function in the server's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout)

    def __enter__(self) -> LoopbackServer:
        self.start_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()
