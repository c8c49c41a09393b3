"""Every query the app makes, written once for both engines (see `tx.py` for the little that differs).

A `Store` is a set of coroutines; each runs its synchronous body on one of the store's worker threads
(`worker.py`), so a slow disk or a slow server never stalls the event loop. The engine behind it is a
subclass: `SqliteStore` (the embedded default, one thread, one writer) or `PostgresStore` (several
processes). This package is the only place that speaks SQL.
"""

from __future__ import annotations

import json
from typing import Any

from ..models import iso, utcnow
from .base import JOB_COLUMNS, WAKE_CHANNEL, in_thread
from .jobs import JobQueries
from .pacing import PacingQueries
from .prefs import PrefsQueries
from .reports import ReportQueries
from .tx import Tx

__all__ = ["JOB_COLUMNS", "WAKE_CHANNEL", "Store"]


class Store(JobQueries, PacingQueries, ReportQueries, PrefsQueries):
    """The interface and its queries, grouped by concern in the mixins it is made of (`base.py` names them);
    `open` (and the worker it starts) comes from the engine's subclass."""

    # The bot's own state ------------------------------------------------------------------------------
    @in_thread
    def get_state(self, tx: Tx, key: str) -> Any:
        """A JSON value stored with `set_state`, or None."""
        row = tx.one("SELECT value FROM bot_state WHERE key = ?", [key])
        return json.loads(row["value"]) if row else None

    @in_thread
    def set_state(self, tx: Tx, key: str, value: Any) -> None:
        with tx.write():
            tx.upsert(
                "bot_state",
                {"key": key, "value": json.dumps(value), "updated_at": iso(utcnow())},
                pk=("key",),
            )

    @in_thread
    def ping(self, tx: Tx) -> bool:
        """One trivial query: the database answers (the health check)."""
        return bool(tx.scalar("SELECT 1") == 1)
