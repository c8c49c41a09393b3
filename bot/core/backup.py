"""`python -m bot backup [PATH]`: a consistent copy of the SQLite database, safe while the bot runs.

SQLite's online backup API copies the database page by page inside a read transaction, so the copy is the
database as it was at one moment, recent writes still in `-wal` included, while the bot goes on writing.
A running bot holds `<database>.lock` (see instance_lock.py); the backup does not take that lock (it would
refuse to run beside the bot, which is when a backup matters) and does not need it: SQLite's own locking
keeps the copy consistent. The source is opened read-only, so a wrong DATABASE_PATH creates nothing.

The copy is written beside its final name and renamed once complete and checked, readable by its owner
only (the database holds members' prompts and interaction tokens).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .settings import Settings


class BackupError(Exception):
    """The backup cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    jobs: int


def default_name(database: Path, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{database.stem}-{stamp}.db"


def target_for(database: Path, path: str | None, base: Path = Path()) -> Path:
    """PATH as typed (relative to `base`, the operator's folder): a file, or a folder (existing, or typed
    with a trailing slash) to put one in; nothing: `backups/` beside the database."""
    if not path:
        return database.parent / "backups" / default_name(database)
    target = base / path
    if target.is_dir() or path.endswith(("/", os.sep)):
        return target / default_name(database)
    return target


def backup_database(database: Path, target: Path) -> BackupReport:
    if str(database) == ":memory:" or not database.is_file():
        raise BackupError(f"There is no database at {database} (DATABASE_PATH); nothing to back up.")
    if target.exists():
        raise BackupError(f"{target} exists already; give a new file name (backups never overwrite).")
    if target.resolve() == database.resolve():
        raise BackupError("The backup must go to another file than the database itself.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    uri = "file:" + urllib.parse.quote(str(database.resolve())) + "?mode=ro"
    try:
        source = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"The database {database} cannot be opened: {exc}.") from None
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"The copy failed SQLite's integrity check ({verdict}); try again.")
            jobs = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if _has_jobs(copy) else 0
        finally:
            copy.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"The backup failed: {exc}. Check the free space and try again.") from None
    except OSError as exc:
        raise BackupError(f"The backup cannot be written to {target}: {exc.strerror}.") from None
    finally:
        source.close()
        with contextlib.suppress(OSError):
            partial.unlink()
    return BackupReport(target, target.stat().st_size, int(jobs))


def _has_jobs(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        is not None
    )


def run_backup(settings: Settings, path: str | None, base: Path = Path()) -> int:
    database = settings.database_path
    try:
        report = backup_database(database, target_for(database, path, base))
    except BackupError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Backed up {database} to {report.path} ({report.size / 1e6:.1f} MB, {report.jobs} job(s)).")
    print(
        f"To restore: stop the bot, delete {database.name}-wal and {database.name}-shm if present, copy the "
        f"backup to {database}, start the bot."
    )
    return 0
