"""Read-only report queries: /usage, /server-usage, /quota show, the CSV export and the ledger totals."""

from __future__ import annotations

from datetime import datetime

from ..models import (
    ACTIVE_STATES,
    Job,
    JobState,
    iso,
)
from ..policy import MemberOverride, PolicyChange, PolicyOverview, RoleLimit
from ..report_rows import REPORT_COLUMNS, DailySpend, JobEvent, MemberTotals, ReportRow
from .base import (
    StoreBase,
    in_thread,
)
from .tx import Tx


class ReportQueries(StoreBase):
    @in_thread
    def ledger_totals(self, tx: Tx, guild_id: int | None = None) -> dict[str, int]:
        """Credits by ledger kind (all guilds when guild_id is None): the balance check of the soak test."""
        where, params = ("WHERE guild_id IS ?", [guild_id]) if guild_id is not None else ("", [])
        rows = tx.rows(
            f"SELECT kind, COALESCE(SUM(credits), 0) AS total FROM ledger {where} GROUP BY kind",  # noqa: S608
            params,
        )
        return {r["kind"]: int(r["total"]) for r in rows}

    # Moderation and reports (issue 5) ----------------------------------------------------------------------
    # Read-only queries behind /usage, /server-usage, /quota show and the CSV export. Report rows carry only
    # the fields of ReportRow: never interaction tokens, Discord CDN links or local file paths.
    REPORT_COLUMNS = REPORT_COLUMNS

    @in_thread
    def member_totals(self, tx: Tx, guild_id: int | None, user_id: int) -> MemberTotals:
        """Lifetime figures of one member in one server; a video counts once it was paid for (charged)."""
        row = tx.one(
            "SELECT COUNT(*) AS jobs, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN 1 ELSE 0 END), 0) AS succeeded, "
            "COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN credits END), 0) AS credits, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN cost_usd END), 0) AS usd, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN duration END), 0) AS seconds "
            "FROM jobs WHERE guild_id IS ? AND user_id = ? AND simulated = ?",
            [guild_id, user_id, int(self.trial)],
        )
        assert row is not None
        return MemberTotals(
            jobs=int(row["jobs"]),
            succeeded=int(row["succeeded"]),
            failed=int(row["failed"]),
            credits=int(row["credits"]),
            usd=float(row["usd"]),
            seconds=int(row["seconds"]),
        )

    @in_thread
    def active_jobs(self, tx: Tx, guild_id: int | None, user_id: int) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = tx.rows(
            f"SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? AND state IN ({','.join('?' * len(active))}) "  # noqa: S608, E501
            "ORDER BY id",
            [guild_id, user_id, *active],
        )
        return [Job.from_row(r) for r in rows]

    @in_thread
    def guild_spent(self, tx: Tx, guild_id: int, since: datetime) -> float:
        """USD reserved or charged since `since`: what counts against the monthly budget."""
        return float(
            tx.scalar(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id = ? AND created_at >= ? "
                "AND charge_state IN ('reserved', 'charged') AND simulated = ?",
                [guild_id, iso(since), int(self.trial)],
            )
        )

    @in_thread
    def report_rows(self, tx: Tx, guild_id: int, since: datetime | None = None) -> list[ReportRow]:
        """One row per job of the server created since `since` (all time when None), oldest first."""
        columns = ", ".join(self.REPORT_COLUMNS)
        rows = tx.rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",  # noqa: S608
            [guild_id, iso(since) if since else ""],
        )
        return [ReportRow.from_row(r) for r in rows]

    @in_thread
    def daily_spend(self, tx: Tx, guild_id: int, since: datetime | None = None) -> list[DailySpend]:
        """What the ledger charged per UTC day and member, for the jobs `report_rows` reports (created since
        `since`; trial-mode jobs in a trial store, real ones otherwise): the /server-usage chart's data.
        By day, then member."""
        rows = tx.rows(
            "SELECT SUBSTR(l.at, 1, 10) AS day, l.user_id AS user_id, MAX(j.user_name) AS user_name, "
            "SUM(l.usd) AS usd, SUM(l.credits) AS credits "
            "FROM ledger l JOIN jobs j ON j.id = l.job_id "
            "WHERE l.guild_id = ? AND l.kind = 'charge' AND j.created_at >= ? AND j.simulated = ? "
            "GROUP BY SUBSTR(l.at, 1, 10), l.user_id ORDER BY day, user_id",
            [guild_id, iso(since) if since else "", int(self.trial)],
        )
        return [
            DailySpend(
                r["day"], int(r["user_id"]), r["user_name"], float(r["usd"] or 0), int(r["credits"] or 0)
            )
            for r in rows
        ]

    @in_thread
    def report_events(
        self, tx: Tx, guild_id: int, since: datetime | None = None
    ) -> dict[int, list[JobEvent]]:
        """The audit trail (state and time of every transition) of the same jobs, by job id."""
        rows = tx.rows(
            "SELECT e.job_id, e.state, e.at, e.detail FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.guild_id = ? AND j.created_at >= ? ORDER BY e.job_id, e.id",
            [guild_id, iso(since) if since else ""],
        )
        out: dict[int, list[JobEvent]] = {}
        for row in rows:
            out.setdefault(row["job_id"], []).append(JobEvent(row["state"], row["at"], row["detail"]))
        return out

    @in_thread
    def undelivered_jobs(self, tx: Tx, guild_id: int, limit: int = 25) -> list[ReportRow]:
        """Videos that were made and paid for but reached nobody (any age): moderators should see them."""
        columns = ", ".join(self.REPORT_COLUMNS)
        rows = tx.rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND state = ? ORDER BY id DESC LIMIT ?",  # noqa: S608
            [guild_id, JobState.UNDELIVERED.value, limit],
        )
        return [ReportRow.from_row(r) for r in rows]

    @in_thread
    def policy_overview(self, tx: Tx, guild_id: int, changes: int = 5) -> PolicyOverview:
        """Everything /quota show and /settings show list: role tiers, member overrides, recent changes."""
        roles = tx.rows(
            "SELECT role_id, credits FROM role_limits WHERE guild_id = ? ORDER BY credits DESC", [guild_id]
        )
        members = tx.rows(
            "SELECT user_id, credits, blocked, max_concurrent, usage_reset_at FROM member_policy "
            "WHERE guild_id = ? AND (credits IS NOT NULL OR blocked = 1 OR max_concurrent IS NOT NULL) "
            "ORDER BY user_id",
            [guild_id],
        )
        recent = tx.rows(
            "SELECT actor_id, change, at FROM policy_changes WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, changes],
        )
        return PolicyOverview(
            roles=tuple(RoleLimit(int(r["role_id"]), int(r["credits"])) for r in roles),
            members=tuple(MemberOverride.from_row(m) for m in members),
            changes=tuple(PolicyChange(r["actor_id"], r["change"], r["at"]) for r in recent),
        )
