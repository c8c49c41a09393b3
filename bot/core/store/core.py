"""Every query the app makes, written once for both engines (see `tx.py` for the little that differs).

A `Store` is a set of coroutines; each runs its synchronous body on one of the store's worker threads
(`worker.py`), so a slow disk or a slow server never stalls the event loop. The engine behind it is a
subclass: `SqliteStore` (the embedded default, one thread, one writer) or `PostgresStore` (several
processes). This package is the only place that speaks SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

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
    parse_iso,
    utcnow,
)
from .tx import Tx
from .worker import BACKGROUND, INTERACTIVE, LEASES, Worker

log = logging.getLogger("bot.store")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class PolicyRows:
    """The moderator policy that applies to one member, as stored (unresolved)."""

    guild: dict[str, Any] | None
    member: dict[str, Any] | None
    roles: dict[int, int]  # role id -> credits, only for roles the member has


@dataclass(frozen=True)
class UsageSnapshot:
    """What a member and their server have used, read inside the admission transaction."""

    used_credits: int  # reserved + charged in the member's current period
    granted_credits: int  # bonus grants in the member's current period
    user_active: int
    guild_active: int
    guild_month_usd: float  # reserved + charged this calendar month


JOB_COLUMNS = frozenset(f.name for f in dataclasses.fields(Job)) - {"id"}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return value


WAKE_CHANNEL = "hailuo_wake"  # PostgreSQL NOTIFY channel: a slot freed, a job to claim, a pause
SUBMIT_TURN_LOCK = 7_146_821_001  # advisory lock key: one submit-turn decision at a time, in every process


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _check_lease(job: Job, owner: str | None) -> None:
    """A fenced write (with `owner`) is refused unless that process holds the job's lease."""
    if owner is not None and job.lease_owner != owner:
        raise InvalidTransition(f"job {job.id} is driven by {job.lease_owner or 'no process'}, not {owner}")


def _on_worker(
    priority: int,
) -> Callable[[Callable[Concatenate[Store, Tx, P], R]], Callable[Concatenate[Store, P], Awaitable[R]]]:
    """Make a synchronous method `(self, tx, ...)` a coroutine that runs its body on a worker thread."""

    def decorate(fn: Callable[Concatenate[Store, Tx, P], R]) -> Callable[Concatenate[Store, P], Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
            return await self._run(lambda tx: fn(self, tx, *args, **kwargs), priority)

        return wrapper

    return decorate


# A member's request (waiting inside Discord's 3-second window) goes ahead of the runner's steady stream of
# progress writes; a lease renewal goes ahead of both: one that waits behind a flood of calls until the lease
# has run out hands this process's jobs to another while it still drives them.
_in_thread = _on_worker(INTERACTIVE)
_in_background = _on_worker(BACKGROUND)
_for_leases = _on_worker(LEASES)


class Store:
    """The interface and its queries; `open` (and the worker it starts) comes from the engine's subclass."""

    def __init__(self, *, trial: bool = False) -> None:
        # Which jobs count against quotas, budgets and cost figures: a live store counts real jobs only, a
        # trial-mode one (NOVITA_MODE=simulate) simulated jobs only, so going live starts from zero.
        self.trial = trial
        self._worker: Worker[Tx] | None = None

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self._worker is None:
            return
        worker, self._worker = self._worker, None
        await asyncio.to_thread(worker.shutdown)  # finishes what is queued first

    #: True when no other process can use the database (SQLite with its instance lock): the runner then
    #: takes every unfinished job at start instead of waiting for leases of a previous run to run out.
    single_process: bool = True

    async def describe(self) -> str:
        """Where the data lives, for `python -m bot check` (never a password)."""
        return repr(self)

    def on_wake(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` on the event loop when another process wakes this one (PostgreSQL)."""

    async def _run(self, call: Callable[[Tx], R], priority: int = INTERACTIVE) -> R:
        if self._worker is None:
            raise RuntimeError("the store is not open")
        return await asyncio.wrap_future(self._worker.submit(call, priority))

    # Helpers (worker thread only) ----------------------------------------------------------------------
    def _job(self, tx: Tx, job_id: int) -> Job | None:
        row = tx.one("SELECT * FROM jobs WHERE id = ?", [job_id])
        return Job.from_row(row) if row else None

    def _event(self, tx: Tx, job_id: int, state: str, at: datetime, detail: str | None = None) -> None:
        tx.execute(
            "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, ?)",
            [job_id, state, iso(at), detail],
        )

    def _ledger(self, tx: Tx, job: Job, kind: str, at: datetime, note: str | None = None) -> None:
        tx.execute(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, credits, usd, at, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [job.guild_id, job.user_id, job.id, kind, job.credits, job.cost_usd, iso(at), note],
        )

    def _update(self, tx: Tx, job_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - JOB_COLUMNS
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        tx.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ?",  # noqa: S608 - names checked against JOB_COLUMNS
            [*(_encode(v) for v in fields.values()), job_id],
        )

    # Admission ----------------------------------------------------------------------------------------
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

    def _policy(self, tx: Tx, guild_id: int | None, user_id: int, role_ids: Iterable[int]) -> PolicyRows:
        if guild_id is None:
            return PolicyRows(None, None, {})
        guild = tx.one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id])
        member = tx.one("SELECT * FROM member_policy WHERE guild_id = ? AND user_id = ?", [guild_id, user_id])
        roles = {
            r["role_id"]: r["credits"]
            for r in tx.rows("SELECT role_id, credits FROM role_limits WHERE guild_id = ?", [guild_id])
            if r["role_id"] in set(role_ids)
        }
        return PolicyRows(guild, member, roles)

    @_in_thread
    def admit(
        self,
        tx: Tx,
        values: dict[str, Any],
        role_ids: Iterable[int],
        windows: Callable[[PolicyRows], tuple[datetime, datetime]],
        judge: Callable[[PolicyRows, UsageSnapshot], R],
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
            job_id = tx.insert("jobs", {n: _encode(v) for n, v in row.items()})
            self._event(tx, job_id, JobState.ACCEPTED.value, now, values.get("entry"))
            job = self._job(tx, job_id)
            assert job is not None
            self._ledger(tx, job, "reserve", now)
            if job.lease_owner is None:
                tx.notify(WAKE_CHANNEL, "claim")  # born free: the first runner to claim it drives it
            return job, decision

    # Transitions -------------------------------------------------------------------------------------
    @_in_thread
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
        **fields: Any,
    ) -> Job:
        """Move a job to `new_state` (validated) with `fields`, one committed write with its event.

        `expect` is required: the transition happens only from one of those states, checked inside the
        write transaction, so every caller says what it believes and a stale one is refused
        (InvalidTransition) instead of overwriting a newer state. `charge` settles the reservation (charge or
        refund) in the same transaction, at most once. `owner` (the runner's) fences the write: it happens
        only while that process holds the job's lease, so a process that lost its lease cannot overwrite the
        new owner's work.
        """
        now = utcnow()
        with tx.write():
            job = self._job(tx, job_id)
            if job is None:
                raise KeyError(job_id)
            _check_lease(job, owner)
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
                    [iso(now), job_id],
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

    @_in_background
    def update_job(self, tx: Tx, job_id: int, owner: str | None = None, **fields: Any) -> Job:
        """Change fields that are not the state (progress, eta, card ids, ...); fenced by `owner` like
        `transition`."""
        with tx.write():
            if owner is not None:
                current = self._job(tx, job_id)
                if current is None:
                    raise KeyError(job_id)
                _check_lease(current, owner)
            self._update(tx, job_id, {**fields, "updated_at": utcnow()})
            job = self._job(tx, job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    @_in_background
    def add_event(self, tx: Tx, job_id: int, label: str, detail: str | None = None) -> None:
        with tx.write():
            self._event(tx, job_id, label, utcnow(), detail)

    # Queries -----------------------------------------------------------------------------------------
    @_in_thread
    def get_job(self, tx: Tx, job_id: int) -> Job | None:
        return self._job(tx, job_id)

    @_in_thread
    def unfinished_jobs(self, tx: Tx) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = tx.rows(
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(active))}) ORDER BY id",  # noqa: S608
            active,
        )
        return [Job.from_row(r) for r in rows]

    # Leases: which process drives which job ---------------------------------------------------------------
    @_in_thread
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

    @_for_leases
    def renew_leases(self, tx: Tx, owner: str, lease_s: float, job_ids: Iterable[int]) -> set[int]:
        """Extend this process's leases; returns the ids it still holds (not those another process took)."""
        ids = list(job_ids)
        if not ids:
            return set()
        with tx.write():
            sql = "UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND id IN "
            rows = tx.rows(
                f"{sql}({_marks(len(ids))}) RETURNING id",
                [iso(utcnow() + timedelta(seconds=lease_s)), owner, *ids],
            )
        return {r["id"] for r in rows}

    @_in_background
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
                    tx.execute(f"{sql} IN ({_marks(len(ids))})", [owner, *ids])
            tx.notify(WAKE_CHANNEL, "claim")

    # Novita pacing, for every process together ---------------------------------------------------------
    @_in_thread
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
            _check_lease(job, owner)
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

    @_in_thread
    def pause_submits(self, tx: Tx, seconds: float, detail: str | None = None) -> None:
        """Hold every process's submits back for `seconds` (a 429, an empty account); never shortens one."""
        until = iso(utcnow() + timedelta(seconds=seconds))
        with tx.write():
            current = tx.scalar("SELECT until FROM runner_pauses WHERE name = 'submit'")
            if current is None or current < until:
                tx.upsert("runner_pauses", {"name": "submit", "until": until, "detail": detail}, pk=("name",))
            tx.notify(WAKE_CHANNEL, "pause")

    @_in_background
    def submit_pause(self, tx: Tx) -> tuple[datetime | None, str | None]:
        """The pause on submits now in force (until, why), or (None, None)."""
        row = tx.one(
            "SELECT until, detail FROM runner_pauses WHERE name = 'submit' AND until > ?", [iso(utcnow())]
        )
        return (parse_iso(row["until"]), row["detail"]) if row else (None, None)

    @_in_thread
    def submits_since(self, tx: Tx, since: datetime) -> list[datetime]:
        """When each recorded submit since `since` ended (or went out, while it is on the wire)."""
        rows = tx.rows("SELECT at FROM novita_submits WHERE at >= ? ORDER BY at", [iso(since)])
        return [parse_iso(r["at"]) for r in rows]  # type: ignore[misc]  # the column is NOT NULL

    @_in_background
    def queued_jobs(self, tx: Tx) -> list[Job]:
        """Every job waiting for a submit turn, in every process, oldest first: the member's place in line."""
        rows = tx.rows("SELECT * FROM jobs WHERE state = ? ORDER BY id", [JobState.QUEUED.value])
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def jobs_for_user(self, tx: Tx, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        rows = tx.rows(
            "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, user_id, limit],
        )
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def events(self, tx: Tx, job_id: int) -> list[dict[str, Any]]:
        return tx.rows("SELECT state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", [job_id])

    @_in_thread
    def ledger_totals(self, tx: Tx, guild_id: int | None = None) -> dict[str, int]:
        """Credits by ledger kind (all guilds when guild_id is None): the balance check of the soak test."""
        where, params = ("WHERE guild_id IS ?", [guild_id]) if guild_id is not None else ("", [])
        rows = tx.rows(
            f"SELECT kind, COALESCE(SUM(credits), 0) AS total FROM ledger {where} GROUP BY kind",  # noqa: S608
            params,
        )
        return {r["kind"]: int(r["total"]) for r in rows}

    @_in_thread
    def usage(
        self, tx: Tx, guild_id: int | None, user_id: int, period_start: datetime, month_start: datetime
    ) -> UsageSnapshot:
        return self._usage(tx, guild_id, user_id, period_start, month_start)

    @_in_thread
    def policy(self, tx: Tx, guild_id: int | None, user_id: int, role_ids: Iterable[int] = ()) -> PolicyRows:
        return self._policy(tx, guild_id, user_id, role_ids)

    # The bot's own state ------------------------------------------------------------------------------
    @_in_thread
    def get_state(self, tx: Tx, key: str) -> Any:
        """A JSON value stored with `set_state`, or None."""
        row = tx.one("SELECT value FROM bot_state WHERE key = ?", [key])
        return json.loads(row["value"]) if row else None

    @_in_thread
    def set_state(self, tx: Tx, key: str, value: Any) -> None:
        with tx.write():
            tx.upsert(
                "bot_state",
                {"key": key, "value": json.dumps(value), "updated_at": iso(utcnow())},
                pk=("key",),
            )

    @_in_thread
    def ping(self, tx: Tx) -> bool:
        """One trivial query: the database answers (the health check)."""
        return bool(tx.scalar("SELECT 1") == 1)

    # Moderator policy ---------------------------------------------------------------------------------
    @_in_thread
    def guild_settings(self, tx: Tx, guild_id: int) -> dict[str, Any]:
        return self._guild_row(tx, guild_id)

    @_in_thread
    def set_guild_settings(self, tx: Tx, guild_id: int, actor_id: int | None, **fields: Any) -> None:
        with tx.write():
            self._write_guild(tx, guild_id, actor_id, fields)

    @_in_thread
    def change_guild_settings(
        self,
        tx: Tx,
        guild_id: int,
        actor_id: int | None,
        change: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, R]],
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

    def _guild_row(self, tx: Tx, guild_id: int) -> dict[str, Any]:
        row = tx.one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id]) or {"guild_id": guild_id}
        for key in ("allowed_channels", "blocklist"):
            row[key] = json.loads(row.get(key) or "[]")
        return row

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
                **{k: _encode(v) for k, v in fields.items()},
                "updated_at": iso(now),
                "updated_by": actor_id,
            },
            pk=("guild_id",),
        )
        self._policy_change(tx, guild_id, actor_id, fields, now)

    @_in_thread
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

    @_in_thread
    def set_member_policy(
        self, tx: Tx, guild_id: int, user_id: int, actor_id: int | None, **fields: Any
    ) -> None:
        now = utcnow()
        with tx.write():
            tx.upsert(
                "member_policy",
                {"guild_id": guild_id, "user_id": user_id, **{k: _encode(v) for k, v in fields.items()}},
                pk=("guild_id", "user_id"),
            )
            self._policy_change(tx, guild_id, actor_id, {"member": user_id, **fields}, now)

    @_in_thread
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

    # Moderation and reports (issue 5) ----------------------------------------------------------------------
    # Read-only queries behind /usage, /server-usage, /quota show and the CSV export. Report rows carry only
    # REPORT_COLUMNS: never interaction tokens, Discord CDN links or local file paths.
    REPORT_COLUMNS = (
        "id", "state", "guild_id", "channel_id", "user_id", "user_name", "entry", "prompt", "camera",
        "duration", "resolution", "prompt_expansion", "image_name", "parent_job_id", "credits", "cost_usd",
        "charge_state", "task_id", "novita_status", "delivered_via", "result_channel_id", "result_message_id",
        "card_channel_id", "card_message_id", "reencoded", "error", "error_detail", "created_at",
        "submitted_at", "finished_at", "delivered_at", "simulated", "model", "last_frame_name",
    )  # fmt: skip

    @_in_thread
    def member_totals(self, tx: Tx, guild_id: int | None, user_id: int) -> dict[str, Any]:
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
        return row

    @_in_thread
    def active_jobs(self, tx: Tx, guild_id: int | None, user_id: int) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = tx.rows(
            f"SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? AND state IN ({','.join('?' * len(active))}) "  # noqa: S608, E501
            "ORDER BY id",
            [guild_id, user_id, *active],
        )
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def guild_spent(self, tx: Tx, guild_id: int, since: datetime) -> float:
        """USD reserved or charged since `since`: what counts against the monthly budget."""
        return float(
            tx.scalar(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id = ? AND created_at >= ? "
                "AND charge_state IN ('reserved', 'charged') AND simulated = ?",
                [guild_id, iso(since), int(self.trial)],
            )
        )

    @_in_thread
    def report_rows(self, tx: Tx, guild_id: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """One row per job of the server created since `since` (all time when None), oldest first."""
        columns = ", ".join(self.REPORT_COLUMNS)
        return tx.rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",  # noqa: S608
            [guild_id, iso(since) if since else ""],
        )

    @_in_thread
    def daily_spend(self, tx: Tx, guild_id: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """What the ledger charged per UTC day and member, for the jobs `report_rows` reports (created since
        `since`; trial-mode jobs in a trial store, real ones otherwise): the /server-usage chart's data.
        Each row: day ('YYYY-MM-DD'), user_id, user_name, usd, credits; by day, then member."""
        return tx.rows(
            "SELECT SUBSTR(l.at, 1, 10) AS day, l.user_id AS user_id, MAX(j.user_name) AS user_name, "
            "SUM(l.usd) AS usd, SUM(l.credits) AS credits "
            "FROM ledger l JOIN jobs j ON j.id = l.job_id "
            "WHERE l.guild_id = ? AND l.kind = 'charge' AND j.created_at >= ? AND j.simulated = ? "
            "GROUP BY SUBSTR(l.at, 1, 10), l.user_id ORDER BY day, user_id",
            [guild_id, iso(since) if since else "", int(self.trial)],
        )

    @_in_thread
    def report_events(
        self, tx: Tx, guild_id: int, since: datetime | None = None
    ) -> dict[int, list[dict[str, Any]]]:
        """The audit trail (state and time of every transition) of the same jobs, by job id."""
        rows = tx.rows(
            "SELECT e.job_id, e.state, e.at, e.detail FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.guild_id = ? AND j.created_at >= ? ORDER BY e.job_id, e.id",
            [guild_id, iso(since) if since else ""],
        )
        out: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row.pop("job_id"), []).append(row)
        return out

    @_in_thread
    def undelivered_jobs(self, tx: Tx, guild_id: int, limit: int = 25) -> list[dict[str, Any]]:
        """Videos that were made and paid for but reached nobody (any age): moderators should see them."""
        columns = ", ".join(self.REPORT_COLUMNS)
        return tx.rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND state = ? ORDER BY id DESC LIMIT ?",  # noqa: S608
            [guild_id, JobState.UNDELIVERED.value, limit],
        )

    @_in_thread
    def policy_overview(self, tx: Tx, guild_id: int, changes: int = 5) -> dict[str, Any]:
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
        return {"roles": roles, "members": members, "changes": recent}
