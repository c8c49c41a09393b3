"""Moderator policy: a server's settings, role tiers, member overrides and grants, and what one member
has used (read inside the admission transaction)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ..models import (
    ACTIVE_STATES,
    ChargeState,
    iso,
    utcnow,
)
from ..policy import GuildSettings, MemberOverride, PolicySources, UsageSnapshot
from .base import (
    R,
    StoreBase,
    encode,
    in_thread,
)
from .tx import Tx


class PolicyQueries(StoreBase):
    # Admission reads ---------------------------------------------------------------------------------
    def _usage(
        self, tx: Tx, guild_id: int | None, user_id: int, period_start: datetime, month_start: datetime
    ) -> UsageSnapshot:
        held = (ChargeState.RESERVED.value, ChargeState.CHARGED.value)
        active = [s.value for s in ACTIVE_STATES]
        marks = ",".join("?" * len(active))
        mode = int(self.trial)
        used = tx.scalar(
            "SELECT COALESCE(SUM(credits), 0) FROM jobs WHERE guild_id IS ? AND user_id = ? "
            "AND created_at >= ? AND charge_state IN (?, ?) AND simulated = ?",
            [guild_id, user_id, iso(period_start), *held, mode],
        )
        granted = tx.scalar(
            "SELECT COALESCE(SUM(credits), 0) FROM ledger WHERE guild_id IS ? AND user_id = ? "
            "AND kind = 'grant' AND at >= ?",
            [guild_id, user_id, iso(period_start)],
        )
        user_active = tx.scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND user_id = ? AND state IN ({marks}) "  # noqa: S608
            "AND simulated = ?",
            [guild_id, user_id, *active, mode],
        )
        guild_active = tx.scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND state IN ({marks}) AND simulated = ?",  # noqa: S608
            [guild_id, *active, mode],
        )
        month_usd = tx.scalar(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id IS ? AND created_at >= ? "
            "AND charge_state IN (?, ?) AND simulated = ?",
            [guild_id, iso(month_start), *held, mode],
        )
        return UsageSnapshot(int(used), int(granted), int(user_active), int(guild_active), float(month_usd))

    def _policy(self, tx: Tx, guild_id: int | None, user_id: int, role_ids: Iterable[int]) -> PolicySources:
        if guild_id is None:
            return PolicySources(None, None, {})
        guild = tx.one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id])
        member = tx.one("SELECT * FROM member_policy WHERE guild_id = ? AND user_id = ?", [guild_id, user_id])
        roles = {
            int(r["role_id"]): int(r["credits"])
            for r in tx.rows("SELECT role_id, credits FROM role_limits WHERE guild_id = ?", [guild_id])
            if r["role_id"] in set(role_ids)
        }
        return PolicySources(
            GuildSettings.from_row(guild) if guild else None,
            MemberOverride.from_row(member) if member else None,
            roles,
        )

    @in_thread
    def usage(
        self, tx: Tx, guild_id: int | None, user_id: int, period_start: datetime, month_start: datetime
    ) -> UsageSnapshot:
        return self._usage(tx, guild_id, user_id, period_start, month_start)

    @in_thread
    def policy(
        self, tx: Tx, guild_id: int | None, user_id: int, role_ids: Iterable[int] = ()
    ) -> PolicySources:
        return self._policy(tx, guild_id, user_id, role_ids)

    # Moderator policy ---------------------------------------------------------------------------------
    @in_thread
    def guild_settings(self, tx: Tx, guild_id: int) -> GuildSettings:
        """The server's settings as it left them (every one unset when it has no row)."""
        return self._guild_row(tx, guild_id)

    @in_thread
    def set_guild_settings(self, tx: Tx, guild_id: int, actor_id: int | None, **fields: Any) -> None:
        with tx.write():
            self._write_guild(tx, guild_id, actor_id, fields)

    @in_thread
    def change_guild_settings(
        self,
        tx: Tx,
        guild_id: int,
        actor_id: int | None,
        change: Callable[[GuildSettings], tuple[dict[str, Any] | None, R]],
    ) -> R:
        """Read the server's settings, let `change` decide (fields to write, or None; and an answer), and
        write them, in one transaction: two moderators changing a list at once both count (no lost update).
        `change` is pure and quick; it runs on the store's thread."""
        with tx.write():
            tx.serialize(guild_id)
            fields, answer = change(self._guild_row(tx, guild_id))
            if fields is not None:
                self._write_guild(tx, guild_id, actor_id, fields)
        return answer

    def _guild_row(self, tx: Tx, guild_id: int) -> GuildSettings:
        row = tx.one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id])
        return GuildSettings.from_row(row) if row else GuildSettings(guild_id)

    def _write_guild(self, tx: Tx, guild_id: int, actor_id: int | None, fields: dict[str, Any]) -> None:
        fields = dict(fields)
        for key in ("allowed_channels", "blocklist"):
            if key in fields:
                fields[key] = json.dumps(fields[key])
        now = utcnow()
        tx.upsert(
            "guild_settings",
            {
                "guild_id": guild_id,
                **{k: encode(v) for k, v in fields.items()},
                "updated_at": iso(now),
                "updated_by": actor_id,
            },
            pk=("guild_id",),
        )
        self._policy_change(tx, guild_id, actor_id, fields, now)

    @in_thread
    def set_role_limit(
        self, tx: Tx, guild_id: int, role_id: int, credits: int | None, actor_id: int | None
    ) -> None:
        now = utcnow()
        with tx.write():
            if credits is None:
                tx.execute("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", [guild_id, role_id])
            else:
                tx.upsert(
                    "role_limits",
                    {"guild_id": guild_id, "role_id": role_id, "credits": credits},
                    pk=("guild_id", "role_id"),
                )
            self._policy_change(tx, guild_id, actor_id, {"role": role_id, "credits": credits}, now)

    @in_thread
    def set_member_policy(
        self, tx: Tx, guild_id: int, user_id: int, actor_id: int | None, **fields: Any
    ) -> None:
        now = utcnow()
        with tx.write():
            tx.upsert(
                "member_policy",
                {"guild_id": guild_id, "user_id": user_id, **{k: encode(v) for k, v in fields.items()}},
                pk=("guild_id", "user_id"),
            )
            self._policy_change(tx, guild_id, actor_id, {"member": user_id, **fields}, now)

    @in_thread
    def grant(
        self, tx: Tx, guild_id: int, user_id: int, credits: int, actor_id: int | None, note: str | None = None
    ) -> None:
        now = utcnow()
        with tx.write():
            tx.execute(
                "INSERT INTO ledger (guild_id, user_id, job_id, kind, credits, usd, at, actor_id, note) "
                "VALUES (?, ?, NULL, 'grant', ?, 0, ?, ?, ?)",
                [guild_id, user_id, credits, iso(now), actor_id, note],
            )
            self._policy_change(tx, guild_id, actor_id, {"grant": user_id, "credits": credits}, now)

    def _policy_change(
        self, tx: Tx, guild_id: int, actor_id: int | None, change: dict[str, Any], at: datetime
    ) -> None:
        tx.execute(
            "INSERT INTO policy_changes (guild_id, actor_id, change, at) VALUES (?, ?, ?, ?)",
            [guild_id, actor_id, json.dumps(change, default=str), iso(at)],
        )
