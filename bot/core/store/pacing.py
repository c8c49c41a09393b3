"""Novita pacing, for every process together: submit turns under the per-minute rate and the in-flight
cap (one atomic write each), and the submit pause after a refusal."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import (
    AT_NOVITA,
    InvalidTransition,
    Job,
    JobState,
    iso,
    parse_iso,
    utcnow,
)
from .base import (
    SUBMIT_TURN_LOCK,
    WAKE_CHANNEL,
    StoreBase,
    check_lease,
    in_background,
    in_thread,
)
from .tx import Tx


class PacingQueries(StoreBase):
    # Novita pacing, for every process together ---------------------------------------------------------
    @in_thread
    def take_submit_turn(
        self, tx: Tx, job_id: int, owner: str | None, per_minute: int, max_in_flight: int
    ) -> tuple[Job | None, float]:
        """Atomically: if fewer than `per_minute` submits count against the last 60 s, fewer than
        `max_in_flight` jobs are at Novita, and submits are not paused, record a submit and move the job
        `queued -> submitting`. Returns (the job, 0) when the turn is taken, else (None, the most seconds
        to wait before asking again).

        Novita counts a submit when it arrives, which may be well after its turn (a busy process, a slow
        connection). So a submit counts from when it ended (`transition` restamps its row when the job
        leaves `submitting`: the latest moment it can have arrived), and one not ended yet counts however
        old its turn. Serialised across processes, so the limits hold for all of them together."""
        now = utcnow()
        window_start = now - timedelta(seconds=60)
        with tx.write():
            tx.serialize(SUBMIT_TURN_LOCK)
            paused = tx.scalar(
                "SELECT until FROM runner_pauses WHERE name = 'submit' AND until > ?", [iso(now)]
            )
            if paused:
                return None, max(0.05, (parse_iso(paused) - now).total_seconds())  # type: ignore[operator]  # set
            busy = [s.value for s in AT_NOVITA]
            in_flight = tx.scalar(
                f"SELECT COUNT(*) FROM jobs WHERE state IN ({','.join('?' * len(busy))})",  # noqa: S608
                busy,
            )
            if in_flight >= max_in_flight:
                return None, 5.0  # until a slot frees (the freeing process wakes us sooner)
            # Submits still on the wire whose turn is older than the window (a hung request, a process
            # killed while sending): each may reach Novita at any moment, so each counts until it ends.
            # Read before the window: a submit that ends in between (its row restamped by another process)
            # is then counted twice rather than missed.
            unanswered = tx.scalar(
                "SELECT COUNT(*) FROM jobs WHERE state = ? AND NOT EXISTS "
                "(SELECT 1 FROM novita_submits s WHERE s.job_id = jobs.id AND s.at > ?)",
                [JobState.SUBMITTING.value, iso(window_start)],
            )
            recent = tx.rows("SELECT at FROM novita_submits WHERE at > ? ORDER BY at", [iso(window_start)])
            room = per_minute - unanswered
            if len(recent) >= room:
                if room <= 0:
                    return None, 1.0  # until one of them ends
                oldest = parse_iso(recent[-room]["at"])
                assert oldest is not None
                return None, max(0.05, 60 - (now - oldest).total_seconds())
            job = self._job(tx, job_id)
            if job is None:
                raise KeyError(job_id)
            check_lease(job, owner)
            if job.state != JobState.QUEUED:
                raise InvalidTransition(f"job {job_id} is {job.state}, not queued")
            tx.execute(
                "INSERT INTO novita_submits (at, job_id, owner) VALUES (?, ?, ?)", [iso(now), job_id, owner]
            )
            tx.execute("DELETE FROM novita_submits WHERE at < ?", [iso(now - timedelta(minutes=10))])
            self._update(tx, job_id, {"state": JobState.SUBMITTING.value, "updated_at": now})
            self._event(tx, job_id, JobState.SUBMITTING.value, now)
            updated = self._job(tx, job_id)
        return updated, 0.0

    @in_thread
    def pause_submits(self, tx: Tx, seconds: float, detail: str | None = None) -> None:
        """Hold every process's submits back for `seconds` (a 429, an empty account); never shortens one."""
        until = iso(utcnow() + timedelta(seconds=seconds))
        with tx.write():
            current = tx.scalar("SELECT until FROM runner_pauses WHERE name = 'submit'")
            if current is None or current < until:
                tx.upsert("runner_pauses", {"name": "submit", "until": until, "detail": detail}, pk=("name",))
            tx.notify(WAKE_CHANNEL, "pause")

    @in_background
    def submit_pause(self, tx: Tx) -> tuple[datetime | None, str | None]:
        """The pause on submits now in force (until, why), or (None, None)."""
        row = tx.one(
            "SELECT until, detail FROM runner_pauses WHERE name = 'submit' AND until > ?", [iso(utcnow())]
        )
        return (parse_iso(row["until"]), row["detail"]) if row else (None, None)

    @in_thread
    def submits_since(self, tx: Tx, since: datetime) -> list[datetime]:
        """When each recorded submit since `since` ended (or went out, while it is on the wire)."""
        rows = tx.rows("SELECT at FROM novita_submits WHERE at >= ? ORDER BY at", [iso(since)])
        return [parse_iso(r["at"]) for r in rows]  # type: ignore[misc]  # the column is NOT NULL
