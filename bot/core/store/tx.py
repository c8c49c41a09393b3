"""The connection a query runs on, as the queries see it: the same few calls on SQLite and PostgreSQL.

Queries are written once, in the SQL both engines speak (`?` placeholders, `ON CONFLICT` upserts,
`RETURNING`), and the few places where the engines differ live here: placeholders and null-safe comparison,
how a write transaction takes its lock, serialising concurrent admissions across processes, and waking other
processes.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlite_utils import Database


class Tx:
    """One connection, used by one worker thread at a time."""

    dialect: str = ""
    skip_locked: str = ""  # appended to a SELECT that picks rows to claim

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        raise NotImplementedError

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction (a savepoint when nested)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def serialize(self, *keys: int) -> None:
        """Inside a write: make concurrent writers with the same keys (in any process) wait for this one."""

    def notify(self, channel: str, payload: str = "") -> None:
        """Inside a write: wake the other processes listening on `channel` when this transaction commits."""

    # Shared on top of execute -------------------------------------------------------------------------
    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        """Insert one row and return its id."""
        names = list(row)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) RETURNING id"  # noqa: S608
        return int(self.scalar(sql, [row[n] for n in names]))

    def upsert(self, table: str, row: Mapping[str, Any], pk: tuple[str, ...]) -> None:
        """Insert the row, or update the given columns of the row with the same primary key."""
        names = list(row)
        updates = [n for n in names if n not in pk]
        action = (
            "DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in updates) if updates else "DO NOTHING"
        )
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(pk)}) {action}"
        )
        self.execute(sql, [row[n] for n in names])


class SqliteTx(Tx):
    dialect = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self.conn.execute(sql, list(params))

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Takes the write lock up front (BEGIN IMMEDIATE), so a lock held by another connection is waited
        out under the busy timeout. A deferred BEGIN that has already read would get SQLITE_BUSY at once when
        it tries to write, without waiting."""
        if self.conn.in_transaction:  # nested: a savepoint inside the outer transaction
            with self.db.atomic():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()


_IS_PARAM = re.compile(r"\bIS \?")


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`; SQLite's null-safe `IS ?` to `IS NOT DISTINCT FROM %s`."""
    sql = sql.replace("%", "%%")
    sql = _IS_PARAM.sub("IS NOT DISTINCT FROM ?", sql)
    return sql.replace("?", "%s")


class PostgresTx(Tx):
    dialect = "postgres"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: Any) -> None:  # a psycopg.Connection in autocommit mode
        self.conn = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self.conn.execute(to_postgres(sql), list(params))

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self.conn.transaction():  # psycopg turns a nested one into a savepoint
            yield

    def serialize(self, *keys: int) -> None:
        for key in sorted(set(keys)):  # a fixed order: two writers never wait on each other in a cycle
            self.execute("SELECT pg_advisory_xact_lock(?)", [key])

    def notify(self, channel: str, payload: str = "") -> None:
        self.execute("SELECT pg_notify(?, ?)", [channel, payload])
