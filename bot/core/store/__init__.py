"""The store: one interface (`Store`), two engines (`SqliteStore`, the default; `PostgresStore`)."""

from __future__ import annotations

from pathlib import Path

from .core import JOB_COLUMNS, Store
from .sqlite import SqliteStore

__all__ = ["JOB_COLUMNS", "SqliteStore", "Store", "open_store"]


def open_store(database_path: Path, database_url: str | None = None, *, trial: bool = False) -> Store:
    """The store to use (not yet opened): PostgreSQL when a URL is given, else the SQLite file. `trial`: the
    store counts trial-mode jobs only (quotas, budgets, costs), so going live starts from zero."""
    if database_url:
        from .postgres import PostgresStore

        return PostgresStore(database_url, trial=trial)
    return SqliteStore(database_path, trial=trial)
