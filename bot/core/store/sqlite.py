"""The embedded default: one SQLite file through sqlite-utils, its schema and migrations.

One worker thread owns the connection, so there is exactly one writer: a check-then-write inside one
transaction (`admit`) is atomic against every concurrent request. The file is in WAL mode, durable across a
crash of the process (`synchronous = NORMAL`), and waits out locks held by other connections (a backup) under
a 10-second busy timeout. Only one process may drive jobs from a file (`bot/core/instance_lock.py`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import schema
from .core import Store
from .tx import SqliteTx, Tx
from .worker import Worker

migrations = Migrations("hailuo")


def _register(name: str, sql: str) -> None:
    def apply(db: Database) -> None:
        for statement in schema.render(sql, "sqlite"):
            db.execute(statement)

    migrations(name=name)(apply)


for _name, _sql in schema.MIGRATIONS:
    _register(_name, _sql)


class SqliteStore(Store):
    def __init__(self, path: Path | str, *, trial: bool = False) -> None:
        super().__init__(trial=trial)
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def describe(self) -> str:
        return f"SQLite {self.path}"

    async def open(self) -> None:
        worker: Worker[Tx] = Worker(self._connect, _close, threads=1)
        try:
            await asyncio.to_thread(worker.wait_ready)
        except BaseException:
            await asyncio.to_thread(worker.shutdown)
            raise
        self._worker = worker

    def _connect(self) -> Tx:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=10)
        db = Database(conn, execute_plugins=False)
        db.execute("PRAGMA busy_timeout = 10000")
        if str(self.path) != ":memory:":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process in WAL mode
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
        return SqliteTx(db)


def _close(tx: Tx) -> None:
    assert isinstance(tx, SqliteTx)
    tx.db.close()
