"""The store: one interface (`Store`), two engines (`SqliteStore`, the default; `PostgresStore`)."""

from __future__ import annotations

from pathlib import Path

from .core import JOB_COLUMNS, PolicyRows, Store, UsageSnapshot
from .sqlite import SqliteStore

__all__ = ["JOB_COLUMNS", "PolicyRows", "SqliteStore", "Store", "UsageSnapshot", "open_store"]


def open_store(database_path: Path, database_url: str | None = None) -> Store:
    """The store to use (not yet opened): PostgreSQL when a URL is given, else the SQLite file."""
    if database_url:
        from .postgres import PostgresStore

        return PostgresStore(database_url)
    return SqliteStore(database_path)
