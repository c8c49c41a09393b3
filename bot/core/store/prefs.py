"""Queries of members' own defaults (/preferences), one row per member per server in `member_prefs`.

A NULL column means "the server's default"; deleting the row resets everything. Kept apart from `core.py` so
the query module can be split without touching these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..models import iso, utcnow
from ..preferences import PREF_COLUMNS, Preferences
from .tx import Tx
from .worker import INTERACTIVE

R = TypeVar("R")


class PrefsQueries:
    """Mixed into `Store`: reads and writes of `member_prefs` on the store's worker thread."""

    async def _run(self, call: Callable[[Tx], R], priority: int = INTERACTIVE) -> R:
        raise NotImplementedError  # Store's

    async def member_prefs(self, guild_id: int, user_id: int) -> Preferences:
        """The member's defaults in this server (all "server default" when they set none)."""

        return await self._run(lambda tx: self._read_prefs(tx, guild_id, user_id))

    async def change_member_prefs(
        self, guild_id: int, user_id: int, change: Callable[[Preferences], tuple[Preferences, R]]
    ) -> tuple[Preferences, R]:
        """Read the member's defaults, let `change` decide (new defaults and an answer), write them, in one
        transaction: two quick presses both count. `change` is pure and quick (it runs on the store's
        thread)."""

        def update(tx: Tx) -> tuple[Preferences, R]:
            with tx.write():
                tx.serialize(guild_id, user_id)
                old = self._read_prefs(tx, guild_id, user_id)
                new, answer = change(old)
                if new != old:
                    self._write_prefs(tx, guild_id, user_id, new)
            return new, answer

        return await self._run(update)

    async def set_member_prefs(self, guild_id: int, user_id: int, prefs: Preferences) -> Preferences:
        """Store all of the member's defaults at once (the row is replaced, not merged)."""

        def write(tx: Tx) -> Preferences:
            with tx.write():
                self._write_prefs(tx, guild_id, user_id, prefs)
            return prefs

        return await self._run(write)

    async def clear_member_prefs(self, guild_id: int, user_id: int) -> None:
        """Back to the server's defaults (and no DM copies)."""

        def delete(tx: Tx) -> None:
            with tx.write():
                tx.execute("DELETE FROM member_prefs WHERE guild_id = ? AND user_id = ?", [guild_id, user_id])

        await self._run(delete)

    @staticmethod
    def _read_prefs(tx: Tx, guild_id: int, user_id: int) -> Preferences:
        row = tx.one("SELECT * FROM member_prefs WHERE guild_id = ? AND user_id = ?", [guild_id, user_id])
        return Preferences.from_row(row)

    @staticmethod
    def _write_prefs(tx: Tx, guild_id: int, user_id: int, prefs: Preferences) -> None:
        row: dict[str, Any] = {"guild_id": guild_id, "user_id": user_id, **prefs.columns()}
        row["updated_at"] = iso(utcnow())
        tx.upsert("member_prefs", row, pk=("guild_id", "user_id"))


__all__ = ["PREF_COLUMNS", "PrefsQueries"]
