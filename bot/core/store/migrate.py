"""`python -m bot migrate-to-postgres`: copy a SQLite database (jobs, ledger, policy, audit) into PostgreSQL.

The copy is one PostgreSQL transaction: every row of every table, with its id, then the id sequences moved
past the copied ids, then a check that each table holds as many rows as the SQLite file and that the ledger
balances the same way. Anything wrong rolls the whole copy back. The SQLite file is only read, under the
instance lock, so no bot can be writing to it meanwhile.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..instance_lock import InstanceLock
from .postgres import apply_migrations
from .tx import PostgresTx, to_postgres

SKIP_TABLES = {"_sqlite_migrations", "sqlite_sequence", "sqlite_stat1"}


class MigrationRefused(Exception):
    """The copy cannot be made as asked; the message says why and what to do."""


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{table:<16} {count:>8} row(s)" for table, count in self.rows.items()]
        balance = ", ".join(f"{kind} {credits}" for kind, credits in sorted(self.ledger.items()))
        out.append(f"ledger balance   {balance or 'empty'} (the same in both)")
        return out


def _ledger(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    return {str(kind): int(total) for kind, total in rows}


def copy_sqlite_to_postgres(sqlite_path: Path, url: str, *, connect: Any = None) -> CopyReport:
    if not sqlite_path.exists():
        raise MigrationRefused(f"There is no SQLite database at {sqlite_path} (DATABASE_PATH) to copy.")
    lock = InstanceLock(sqlite_path)
    lock.acquire()  # InstanceLocked (its own message) while a bot runs on the file: stop it first
    try:
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            return _copy(source, url, connect)
        finally:
            source.close()
    finally:
        lock.release()


def _copy(source: sqlite3.Connection, url: str, connect: Any) -> CopyReport:
    import psycopg

    conn = (connect or psycopg.connect)(url, autocommit=True)
    try:
        apply_migrations(conn)
        tx = PostgresTx(conn)
        tables = [
            r[0]
            for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in SKIP_TABLES
        ]
        report = CopyReport()
        with tx.write():
            if tx.scalar("SELECT COUNT(*) FROM jobs"):
                raise MigrationRefused(
                    "The PostgreSQL database already holds jobs; copy into an empty database (a new one, "
                    "or drop the old one first) so nothing is counted twice."
                )
            # Parents first, so foreign keys hold at every insert.
            for table in sorted(tables, key=lambda t: (t != "jobs", t)):
                report.rows[table] = _copy_table(source, tx, table)
            ledger_sql = "SELECT kind, SUM(credits) FROM ledger GROUP BY kind ORDER BY kind"
            report.ledger = _ledger(source.execute(ledger_sql).fetchall())
            if _ledger([tuple(r.values()) for r in tx.rows(ledger_sql)]) != report.ledger:
                raise MigrationRefused(
                    "The ledger does not balance the same after the copy; nothing was copied."
                )
        return report
    finally:
        conn.close()


def _copy_table(source: sqlite3.Connection, tx: PostgresTx, table: str) -> int:
    target = {
        r["column_name"]
        for r in tx.rows("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table])
    }
    if not target:
        raise MigrationRefused(f"PostgreSQL has no table {table}; is this SQLite file from a newer version?")
    cursor = source.execute(f"SELECT * FROM {table}")  # noqa: S608 - names from sqlite_master
    names = [d[0] for d in cursor.description]
    missing = [n for n in names if n not in target]
    if missing:
        raise MigrationRefused(f"PostgreSQL's {table} lacks columns {missing}; update the bot and try again.")
    marks = ", ".join("?" * len(names))
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
    count = 0
    while batch := cursor.fetchmany(1000):
        tx.conn.cursor().executemany(to_postgres(sql), batch)
        count += len(batch)
    if "id" in names:  # the next id PostgreSQL hands out comes after the copied ones
        tx.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"  # noqa: S608, E501
        )
    copied = tx.scalar(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
    if copied != count:
        raise MigrationRefused(
            f"{table}: {count} row(s) read but {copied} in PostgreSQL; nothing was copied."
        )
    return count
