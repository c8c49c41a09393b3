"""Jobs and leases: admission (the quota check and the credit reservation in one transaction), fenced state
transitions, job queries, and the leases that say which process drives which job."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from ..models import (
    ACTIVE_STATES,
    AT_NOVITA,
    RESTING_STATES,
    ChargeState,
    InvalidTransition,
    Job,
    JobState,
    check_transition,
    iso,
    utcnow,
)
from ..policy import PolicySources, UsageSnapshot
from .base import (
    JOB_COLUMNS,
    WAKE_CHANNEL,
    R,
    check_lease,
    encode,
    for_leases,
    in_background,
    in_thread,
    log,
    marks,
)
from .policy import PolicyQueries
from .tx import Tx


class JobQueries(PolicyQueries):
    # Admission -----------------------------------------------------------------------------------------
    @in_thread
    def admit(
        self,
        tx: Tx,
        values: dict[str, Any],
        role_ids: Iterable[int],
        windows: Callable[[PolicySources], tuple[datetime, datetime]],
        judge: Callable[[PolicySources, UsageSnapshot], R],
        allowed: Callable[[R], bool],
    ) -> tuple[Job | None, R]:
        """Atomically: read policy and usage, ask `judge`, and insert the job with its credits reserved.

        `windows(policy)` gives (member period start, budget month start); `judge` is pure policy (quota.py).
        """
        guild_id, user_id = values.get("guild_id"), values["user_id"]
        with tx.write():
            # Every admission in one server (or, in DMs, of one member) waits for the one before it, in
            # every process: the check below and the reservation are one atomic step.
            tx.serialize(guild_id if guild_id is not None else user_id)
            policy = self._policy(tx, guild_id, user_id, role_ids)
            period_start, month_start = windows(policy)
            decision = judge(policy, self._usage(tx, guild_id, user_id, period_start, month_start))
            if not allowed(decision):
                return None, decision
            now = values.get("created_at") or utcnow()
            row = {
                **values,
                "state": JobState.ACCEPTED.value,
                "charge_state": ChargeState.RESERVED.value,
                "period_start": period_start,
                "created_at": now,
                "updated_at": now,
            }
            unknown = set(row) - JOB_COLUMNS
            if unknown:
                raise ValueError(f"unknown job columns: {sorted(unknown)}")
            job_id = tx.insert("jobs", {n: encode(v) for n, v in row.items()})
            self._event(tx, job_id, JobState.ACCEPTED.value, now, values.get("entry"))
            job = self._job(tx, job_id)
            assert job is not None
            self._ledger(tx, job, "reserve", now)
            if job.lease_owner is None:
                tx.notify(WAKE_CHANNEL, "claim")  # born free: the first runner to claim it drives it
            return job, decision

    # Transitions -------------------------------------------------------------------------------------
    @in_thread
    def transition(
        self,
        tx: Tx,
        job_id: int,
        new_state: JobState,
        *,
        expect: Iterable[JobState],
        charge: ChargeState | None = None,
        detail: str | None = None,
        owner: str | None = None,
        submit_seen_until: datetime | None = None,
        **fields: Any,
    ) -> Job:
        """Move a job to `new_state` (validated) with `fields`, one committed write with its event.

        `expect` is required: the transition happens only from one of those states, checked inside the
        write transaction, so every caller says what it believes and a stale one is refused
        (InvalidTransition) instead of overwriting a newer state. `charge` settles the reservation (charge or
        refund) in the same transaction, at most once. `owner` (the runner's) fences the write: it happens
        only while that process holds the job's lease, so a process that lost its lease cannot overwrite the
        new owner's work. Leaving `submitting`, the submit counts against Novita's minute from now, or from
        `submit_seen_until` when Novita may still take it later (no answer came).
        """
        now = utcnow()
        with tx.write():
            job = self._job(tx, job_id)
            if job is None:
                raise KeyError(job_id)
            check_lease(job, owner)
            if job.state not in set(expect):
                raise InvalidTransition(f"job {job_id} is {job.state}, not one of {sorted(expect)}")
            if job.state != new_state:
                check_transition(job.state, new_state)
            if new_state in RESTING_STATES:  # nobody drives a resting job: its lease goes with the write
                fields = {**fields, "lease_owner": None, "lease_until": None}
            self._update(tx, job_id, {**fields, "state": new_state.value, "updated_at": now})
            if job.state in AT_NOVITA and new_state not in AT_NOVITA:
                tx.notify(WAKE_CHANNEL, "slot")  # a Novita slot is free for every process
            if job.state == JobState.SUBMITTING and new_state != JobState.SUBMITTING:
                # The submit ended (answered, refused, or given up by whoever took the job over): it
                # counts against Novita's minute from now on (see take_submit_turn).
                tx.execute(
                    "UPDATE novita_submits SET at = ? WHERE id = "
                    "(SELECT MAX(id) FROM novita_submits WHERE job_id = ?)",
                    [iso(max(now, submit_seen_until or now)), job_id],
                )
            if job.state != new_state:
                self._event(tx, job_id, new_state.value, now, detail)
                log.debug("job=%s state %s -> %s", job_id, job.state.value, new_state.value)
            if charge is not None and job.charge_state == ChargeState.RESERVED:
                self._update(tx, job_id, {"charge_state": charge.value})
                self._ledger(tx, job, "charge" if charge == ChargeState.CHARGED else "refund", now, detail)
            updated = self._job(tx, job_id)
            assert updated is not None
            return updated

    @in_background
    def update_job(self, tx: Tx, job_id: int, owner: str | None = None, **fields: Any) -> Job:
        """Change fields that are not the state (progress, eta, card ids, ...); fenced by `owner` like
        `transition`."""
        with tx.write():
            if owner is not None:
                current = self._job(tx, job_id)
                if current is None:
                    raise KeyError(job_id)
                check_lease(current, owner)
            self._update(tx, job_id, {**fields, "updated_at": utcnow()})
            job = self._job(tx, job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    @in_background
    def add_event(self, tx: Tx, job_id: int, label: str, detail: str | None = None) -> None:
        with tx.write():
            self._event(tx, job_id, label, utcnow(), detail)

    # Queries -----------------------------------------------------------------------------------------
    @in_thread
    def get_job(self, tx: Tx, job_id: int) -> Job | None:
        return self._job(tx, job_id)

    @in_thread
    def unfinished_jobs(self, tx: Tx) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = tx.rows(
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(active))}) ORDER BY id",  # noqa: S608
            active,
        )
        return [Job.from_row(r) for r in rows]

    # Leases: which process drives which job ---------------------------------------------------------------
    @in_thread
    def claim_jobs(
        self,
        tx: Tx,
        owner: str,
        lease_s: float,
        limit: int = 100,
        *,
        steal: bool = False,
        only_simulated: bool = False,
    ) -> list[Job]:
        """Take up to `limit` unfinished jobs that no live process drives (no lease, or an expired one);
        with `steal`, every unfinished job not already this owner's (only for the one process on SQLite);
        with `only_simulated`, trial-mode jobs only (and any delivery, which needs no Novita).

        On PostgreSQL the candidate rows are locked with SKIP LOCKED, so processes claiming together never
        take the same job and never wait on each other."""
        now = utcnow()
        active = [s.value for s in ACTIVE_STATES]
        marks = ",".join("?" * len(active))
        free = "lease_owner IS NOT ?" if steal else "(lease_owner IS NULL OR lease_until < ?)"
        mode = "AND (simulated = 1 OR state = 'delivering')" if only_simulated else ""
        with tx.write():
            rows = tx.rows(
                f"SELECT id FROM jobs WHERE state IN ({marks}) AND {free} {mode} "  # noqa: S608
                "ORDER BY id LIMIT ?" + tx.skip_locked,
                [*active, owner if steal else iso(now), limit],
            )
            ids = [r["id"] for r in rows]
            if not ids:
                return []
            tx.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ({','.join('?' * len(ids))})",  # noqa: S608
                [owner, iso(now + timedelta(seconds=lease_s)), *ids],
            )
            for job_id in ids:
                self._event(tx, job_id, "claimed", now, owner)
            jobs = [self._job(tx, job_id) for job_id in ids]
        return [j for j in jobs if j is not None]

    @for_leases
    def renew_leases(self, tx: Tx, owner: str, lease_s: float, job_ids: Iterable[int]) -> set[int]:
        """Extend this process's leases; returns the ids it still holds (not those another process took)."""
        ids = list(job_ids)
        if not ids:
            return set()
        with tx.write():
            sql = "UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND id IN "
            rows = tx.rows(
                f"{sql}({marks(len(ids))}) RETURNING id",
                [iso(utcnow() + timedelta(seconds=lease_s)), owner, *ids],
            )
        return {r["id"] for r in rows}

    @in_background
    def release_leases(self, tx: Tx, owner: str, job_ids: Iterable[int] | None = None) -> None:
        """Give jobs up (all of this process's when `job_ids` is None): another process may claim them now."""
        with tx.write():
            if job_ids is None:
                tx.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", [owner]
                )
            else:
                ids = list(job_ids)
                if ids:
                    sql = (
                        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND id"
                    )
                    tx.execute(f"{sql} IN ({marks(len(ids))})", [owner, *ids])
            tx.notify(WAKE_CHANNEL, "claim")

    @in_background
    def queued_jobs(self, tx: Tx) -> list[Job]:
        """Every job waiting for a submit turn, in every process, oldest first: the member's place in line."""
        rows = tx.rows("SELECT * FROM jobs WHERE state = ? ORDER BY id", [JobState.QUEUED.value])
        return [Job.from_row(r) for r in rows]

    @in_thread
    def jobs_for_user(self, tx: Tx, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        rows = tx.rows(
            "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, user_id, limit],
        )
        return [Job.from_row(r) for r in rows]

    @in_thread
    def events(self, tx: Tx, job_id: int) -> list[dict[str, Any]]:
        return tx.rows("SELECT state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", [job_id])
