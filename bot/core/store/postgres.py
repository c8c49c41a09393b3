"""PostgreSQL, for more than one process (`DATABASE_URL=postgresql://…`): its schema and migrations.

The queries are the same as SQLite's (`core.py`); each worker thread holds its own psycopg connection, so a
few queries run at once. Admissions in one server are serialised across processes with a transaction-scoped
advisory lock (`PostgresTx.serialize`), which keeps check-and-reserve atomic for every process together.
The driver is psycopg 3: the store's queries are synchronous functions run on worker threads (SQLite's
driver is synchronous), and psycopg runs the very same functions on PostgreSQL, so the SQL is written once
and both engines pass one contract test suite.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import schema
from .core import WAKE_CHANNEL, Store
from .tx import PostgresTx, Tx
from .worker import Worker

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("bot.store")

_MIGRATION_LOCK = 7_146_821_003  # an advisory lock key: one process migrates at a time


def apply_migrations(
    conn: psycopg.Connection[Any], migrations: list[tuple[str, str]] = schema.MIGRATIONS
) -> list[str]:
    """Apply the migrations not yet recorded and return their names; safe when processes start together."""
    tx = PostgresTx(conn)
    applied: list[str] = []
    with tx.write():
        tx.serialize(_MIGRATION_LOCK)
        tx.execute("CREATE TABLE IF NOT EXISTS hailuo_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r["name"] for r in tx.rows("SELECT name FROM hailuo_migrations")}
        for name, sql in migrations:
            if name in done:
                continue
            for statement in schema.render(sql, "postgres"):
                conn.execute(statement)  # DDL, no parameters
            tx.execute("INSERT INTO hailuo_migrations (name, applied_at) VALUES (?, now()::text)", [name])
            applied.append(name)
    return applied


def schema_version(conn: object) -> list[str]:
    tx = PostgresTx(conn)
    return [r["name"] for r in tx.rows("SELECT name FROM hailuo_migrations ORDER BY name")]


class PostgresStore(Store):
    single_process = False

    def __init__(self, url: str, threads: int = 4, *, trial: bool = False) -> None:
        super().__init__(trial=trial)
        self.url = url
        self.threads = threads
        self._listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[str], None]]] = []
        self._listen_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    async def describe(self) -> str:
        def read() -> str:
            conn = self.connection()
            try:
                info = conn.info
                where = f"{info.host}:{info.port}/{info.dbname}"  # never the password
                names = schema_version(conn)
            finally:
                conn.close()
            return f"PostgreSQL {where} · schema {names[-1] if names else 'none'}"

        return await asyncio.to_thread(read)

    def on_wake(self, callback: Callable[[str], None]) -> None:
        """LISTEN on the wake channel in a thread of its own; each NOTIFY calls `callback` on the loop."""
        self._listeners.append((asyncio.get_running_loop(), callback))
        if self._listen_thread is None:
            self._listen_thread = threading.Thread(target=self._listen, name="store-pg-listen", daemon=True)
            self._listen_thread.start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = self.connection()
                try:
                    conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            for loop, callback in self._listeners:
                                loop.call_soon_threadsafe(callback, note.payload)
                finally:
                    conn.close()
            except Exception:
                if not self._stopping.is_set():
                    log.warning("listening for other processes failed; retrying in 2 s", exc_info=True)
                    self._stopping.wait(2)

    async def close(self) -> None:
        self._stopping.set()
        if self._listen_thread is not None:
            await asyncio.to_thread(self._listen_thread.join)
            self._listen_thread = None
        await super().close()

    def __repr__(self) -> str:
        return "PostgresStore(<DATABASE_URL>)"  # the URL may carry a password

    async def open(self) -> None:
        await asyncio.to_thread(self._migrate)
        worker: Worker[Tx] = Worker(self._connect, _close, threads=self.threads, name="store-pg")
        try:
            await asyncio.to_thread(worker.wait_ready)
        except BaseException:
            await asyncio.to_thread(worker.shutdown)
            raise
        self._worker = worker

    def connection(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def _migrate(self) -> None:
        conn = self.connection()
        try:
            applied = apply_migrations(conn)
            if applied:
                log.info("PostgreSQL schema migrated: %s", ", ".join(applied))
        finally:
            conn.close()

    def _connect(self) -> Tx:
        return PostgresTx(self.connection())


_close: Callable[[Tx], None] = lambda tx: tx.conn.close()  # type: ignore[attr-defined]  # noqa: E731
