"""SQLite through sqlite-utils: the schema, its migrations, and every query the app makes.

sqlite-utils is synchronous, so one worker thread owns the connection and every public method is a coroutine
that runs its body there: a slow disk never stalls the event loop, and because there is exactly one writer,
a check-then-write inside one transaction (`admit`) is atomic against every concurrent request.
This is the only module that speaks SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .models import (
    ACTIVE_STATES,
    ChargeState,
    InvalidTransition,
    Job,
    JobState,
    check_transition,
    iso,
    utcnow,
)

log = logging.getLogger("bot.store")

P = ParamSpec("P")
R = TypeVar("R")

migrations = Migrations("hailuo")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL,
            guild_id INTEGER, channel_id INTEGER, user_id INTEGER NOT NULL, user_name TEXT,
            role_ids TEXT NOT NULL DEFAULT '[]',
            entry TEXT NOT NULL DEFAULT 'slash',
            prompt TEXT NOT NULL, camera TEXT,
            duration INTEGER NOT NULL, resolution TEXT NOT NULL, prompt_expansion INTEGER NOT NULL,
            image_url TEXT, image_path TEXT, image_name TEXT,
            parent_job_id INTEGER, source_message_id INTEGER,
            application_id INTEGER, interaction_token TEXT, token_expires_at TEXT,
            card_channel_id INTEGER, card_message_id INTEGER,
            result_channel_id INTEGER, result_message_id INTEGER, delivered_via TEXT,
            credits INTEGER NOT NULL, cost_usd REAL NOT NULL, charge_state TEXT NOT NULL,
            period_start TEXT,
            task_id TEXT, novita_status TEXT, progress REAL, eta_s REAL, polls INTEGER NOT NULL DEFAULT 0,
            video_path TEXT, video_bytes INTEGER, reencoded INTEGER NOT NULL DEFAULT 0,
            error TEXT, error_detail TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            submitted_at TEXT, finished_at TEXT, delivered_at TEXT, deadline_at TEXT,
            simulated INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX jobs_state ON jobs(state)")
    db.execute("CREATE INDEX jobs_guild_user_created ON jobs(guild_id, user_id, created_at)")
    db.execute("CREATE INDEX jobs_guild_created ON jobs(guild_id, created_at)")
    db.execute("CREATE UNIQUE INDEX jobs_task ON jobs(task_id) WHERE task_id IS NOT NULL")
    # The audit trail: one row per transition (and per notable event) with its time.
    db.execute(
        """
        CREATE TABLE job_events (
            id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id),
            state TEXT NOT NULL, at TEXT NOT NULL, detail TEXT
        )
        """
    )
    db.execute("CREATE INDEX job_events_job ON job_events(job_id)")
    # Every credit movement; for each job: reserved = charged + refunded once it has ended.
    db.execute(
        """
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY, guild_id INTEGER, user_id INTEGER NOT NULL, job_id INTEGER,
            kind TEXT NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund', 'grant')),
            credits INTEGER NOT NULL, usd REAL NOT NULL DEFAULT 0, at TEXT NOT NULL,
            actor_id INTEGER, note TEXT
        )
        """
    )
    db.execute("CREATE INDEX ledger_job ON ledger(job_id)")
    db.execute("CREATE INDEX ledger_guild_user_at ON ledger(guild_id, user_id, at)")
    # Moderator policy. NULL means "inherit the default"; -1 credits means unlimited; 0 blocks.
    db.execute(
        """
        CREATE TABLE guild_settings (
            guild_id INTEGER PRIMARY KEY,
            quota_credits INTEGER, quota_period TEXT, budget_usd REAL,
            user_max_concurrent INTEGER, guild_max_concurrent INTEGER,
            mod_role_id INTEGER, modlog_channel_id INTEGER, spoiler INTEGER NOT NULL DEFAULT 0,
            allowed_channels TEXT NOT NULL DEFAULT '[]', blocklist TEXT NOT NULL DEFAULT '[]',
            updated_at TEXT, updated_by INTEGER
        )
        """
    )
    db.execute(
        "CREATE TABLE role_limits (guild_id INTEGER NOT NULL, role_id INTEGER NOT NULL, "
        "credits INTEGER NOT NULL, PRIMARY KEY (guild_id, role_id))"
    )
    db.execute(
        "CREATE TABLE member_policy (guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, "
        "credits INTEGER, blocked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, user_id))"
    )
    db.execute(
        "CREATE TABLE policy_changes (id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL, "
        "actor_id INTEGER, change TEXT NOT NULL, at TEXT NOT NULL)"
    )


@migrations()
def m002_moderation(db: Database) -> None:
    """Moderator policy beyond m001: per-member concurrent cap, a per-member usage reset marker (see
    `quota.effective_period_start`), a per-server credit cost table, and indexes for the reports."""
    db.execute("ALTER TABLE member_policy ADD COLUMN max_concurrent INTEGER")
    db.execute("ALTER TABLE member_policy ADD COLUMN usage_reset_at TEXT")
    db.execute("ALTER TABLE guild_settings ADD COLUMN credit_table TEXT")  # JSON {"768P/6": 1, ...}
    db.execute("CREATE INDEX jobs_guild_state ON jobs(guild_id, state)")
    db.execute("CREATE INDEX policy_changes_guild_at ON policy_changes(guild_id, at)")


@migrations()
def m003_prepare_attempts(db: Database) -> None:
    """How many times the runner began preparing a job's image: a picture that kills the process while it
    is decoded must not be tried again on every restart forever."""
    db.execute("ALTER TABLE jobs ADD COLUMN prepare_attempts INTEGER NOT NULL DEFAULT 0")


@migrations()
def m004_models(db: Database) -> None:
    """The video model of each job and its last frame (see bot/video_models.py); the models a server allows
    (a JSON list of model keys; NULL: all of them, including models added later)."""
    db.execute("ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT 'hailuo-02'")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_url TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_path TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_name TEXT")
    db.execute("ALTER TABLE guild_settings ADD COLUMN allowed_models TEXT")


@migrations()
def m005_bot_state(db: Database) -> None:
    """Small facts the bot keeps about itself, by key: e.g. what it last registered with Discord, so a
    start syncs the slash commands only when they changed."""
    db.execute("CREATE TABLE bot_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)")


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


INTERACTIVE, BACKGROUND = 0, 1


def _in_thread(fn: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], Awaitable[R]]:
    """Run the decorated synchronous method on the store's worker thread, ahead of background writes."""

    @functools.wraps(fn)
    async def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(functools.partial(fn, self, *args, **kwargs))

    return wrapper


def _in_background(fn: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], Awaitable[R]]:
    """Like `_in_thread`, for the runner's steady stream of progress writes: a member's request waiting
    for an answer inside Discord's 3-second window goes first."""

    @functools.wraps(fn)
    async def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(functools.partial(fn, self, *args, **kwargs), BACKGROUND)

    return wrapper


class _Worker:
    """The one thread that owns the connection. It runs calls by priority (lower first), in arrival order
    within a priority. One thread keeps every check-then-write atomic and SQLite free of lock contention."""

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Future[Any] | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._loop, name="store", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], R], priority: int) -> Future[R]:
        future: Future[R] = Future()
        self._queue.put((priority, next(self._order), call, future))
        return future

    def _loop(self) -> None:
        while True:
            _, _, call, future = self._queue.get()
            if call is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put((BACKGROUND + 1, next(self._order), None, None))
        self._thread.join()


class Store:
    def __init__(self, path: Path | str, *, trial: bool = False) -> None:
        self.path = Path(path)
        # Which jobs count against quotas, budgets and cost figures: a live store counts real jobs only, a
        # trial-mode one (NOVITA_MODE=simulate) simulated jobs only, so going live starts from zero.
        self.trial = trial
        self._worker: _Worker | None = None
        self._db: Database | None = None

    # Lifecycle ----------------------------------------------------------------------------------------
    async def open(self) -> None:
        self._worker = _Worker()
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=10)
        db = Database(conn, execute_plugins=False)
        db.execute("PRAGMA busy_timeout = 10000")
        if str(self.path) != ":memory:":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process in WAL mode
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
        self._db = db

    async def close(self) -> None:
        if self._worker is None:
            return
        if self._db is not None:
            await self._run(self._db.close, BACKGROUND)  # after everything already queued
            self._db = None
        worker, self._worker = self._worker, None
        await asyncio.to_thread(worker.shutdown)

    async def _run(self, call: Callable[[], R], priority: int = INTERACTIVE) -> R:
        if self._worker is None:
            raise RuntimeError("the store is not open")
        return await asyncio.wrap_future(self._worker.submit(call, priority))

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    # Helpers (worker thread only) ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE), so a lock held by
        another process is waited out under the busy timeout. A deferred BEGIN that has already read would
        get SQLITE_BUSY at once when it tries to write, without waiting."""
        conn = self.db.conn
        if conn.in_transaction:  # nested: a savepoint inside the outer transaction
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.db.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    def _job(self, job_id: int) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", [job_id])
        return Job.from_row(row) if row else None

    def _event(self, job_id: int, state: str, at: datetime, detail: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, ?)",
            [job_id, state, iso(at), detail],
        )

    def _ledger(self, job: Job, kind: str, at: datetime, note: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, credits, usd, at, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [job.guild_id, job.user_id, job.id, kind, job.credits, job.cost_usd, iso(at), note],
        )

    def _update(self, job_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - JOB_COLUMNS
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ?",  # noqa: S608 - names checked against JOB_COLUMNS
            [*(_encode(v) for v in fields.values()), job_id],
        )

    # Admission ----------------------------------------------------------------------------------------
    def _usage(
        self, guild_id: int | None, user_id: int, period_start: datetime, month_start: datetime
    ) -> UsageSnapshot:
        held = (ChargeState.RESERVED.value, ChargeState.CHARGED.value)
        active = [s.value for s in ACTIVE_STATES]
        marks = ",".join("?" * len(active))
        mode = int(self.trial)
        used = self._scalar(
            "SELECT COALESCE(SUM(credits), 0) FROM jobs WHERE guild_id IS ? AND user_id = ? "
            "AND created_at >= ? AND charge_state IN (?, ?) AND simulated = ?",
            [guild_id, user_id, iso(period_start), *held, mode],
        )
        granted = self._scalar(
            "SELECT COALESCE(SUM(credits), 0) FROM ledger WHERE guild_id IS ? AND user_id = ? "
            "AND kind = 'grant' AND at >= ?",
            [guild_id, user_id, iso(period_start)],
        )
        user_active = self._scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND user_id = ? AND state IN ({marks}) "  # noqa: S608
            "AND simulated = ?",
            [guild_id, user_id, *active, mode],
        )
        guild_active = self._scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND state IN ({marks}) AND simulated = ?",  # noqa: S608
            [guild_id, *active, mode],
        )
        month_usd = self._scalar(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id IS ? AND created_at >= ? "
            "AND charge_state IN (?, ?) AND simulated = ?",
            [guild_id, iso(month_start), *held, mode],
        )
        return UsageSnapshot(int(used), int(granted), int(user_active), int(guild_active), float(month_usd))

    def _policy(self, guild_id: int | None, user_id: int, role_ids: Iterable[int]) -> PolicyRows:
        if guild_id is None:
            return PolicyRows(None, None, {})
        guild = self._one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id])
        member = self._one(
            "SELECT * FROM member_policy WHERE guild_id = ? AND user_id = ?", [guild_id, user_id]
        )
        roles = {
            r["role_id"]: r["credits"]
            for r in self._rows("SELECT role_id, credits FROM role_limits WHERE guild_id = ?", [guild_id])
            if r["role_id"] in set(role_ids)
        }
        return PolicyRows(guild, member, roles)

    @_in_thread
    def admit(
        self,
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
        with self._write():
            policy = self._policy(guild_id, user_id, role_ids)
            period_start, month_start = windows(policy)
            decision = judge(policy, self._usage(guild_id, user_id, period_start, month_start))
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
            names = list(row)
            cursor = self.db.execute(
                f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608
                [_encode(row[n]) for n in names],
            )
            job_id = int(cursor.lastrowid or 0)
            self._event(job_id, JobState.ACCEPTED.value, now, values.get("entry"))
            job = self._job(job_id)
            assert job is not None
            self._ledger(job, "reserve", now)
            return job, decision

    # Transitions -------------------------------------------------------------------------------------
    @_in_thread
    def transition(
        self,
        job_id: int,
        new_state: JobState,
        *,
        expect: Iterable[JobState],
        charge: ChargeState | None = None,
        detail: str | None = None,
        **fields: Any,
    ) -> Job:
        """Move a job to `new_state` (validated) with `fields`, one committed write with its event.

        `expect` is required: the transition happens only from one of those states, checked inside the
        write transaction, so every caller says what it believes and a stale one is refused
        (InvalidTransition) instead of overwriting a newer state. `charge` settles the reservation (charge or
        refund) in the same transaction, at most once.
        """
        now = utcnow()
        with self._write():
            job = self._job(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.state not in set(expect):
                raise InvalidTransition(f"job {job_id} is {job.state}, not one of {sorted(expect)}")
            if job.state != new_state:
                check_transition(job.state, new_state)
            self._update(job_id, {**fields, "state": new_state.value, "updated_at": now})
            if job.state != new_state:
                self._event(job_id, new_state.value, now, detail)
                log.debug("job=%s state %s -> %s", job_id, job.state.value, new_state.value)
            if charge is not None and job.charge_state == ChargeState.RESERVED:
                self._update(job_id, {"charge_state": charge.value})
                self._ledger(job, "charge" if charge == ChargeState.CHARGED else "refund", now, detail)
            updated = self._job(job_id)
            assert updated is not None
            return updated

    @_in_background
    def update_job(self, job_id: int, **fields: Any) -> Job:
        """Change fields that are not the state (progress, eta, card ids, ...)."""
        with self._write():
            self._update(job_id, {**fields, "updated_at": utcnow()})
            job = self._job(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    @_in_background
    def add_event(self, job_id: int, label: str, detail: str | None = None) -> None:
        with self._write():
            self._event(job_id, label, utcnow(), detail)

    # Queries -----------------------------------------------------------------------------------------
    @_in_thread
    def get_job(self, job_id: int) -> Job | None:
        return self._job(job_id)

    @_in_thread
    def unfinished_jobs(self) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = self._rows(
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(active))}) ORDER BY id",  # noqa: S608
            active,
        )
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def jobs_for_user(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        rows = self._rows(
            "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, user_id, limit],
        )
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def events(self, job_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", [job_id])

    @_in_thread
    def ledger_totals(self, guild_id: int | None = None) -> dict[str, int]:
        """Credits by ledger kind (all guilds when guild_id is None): the balance check of the soak test."""
        where, params = ("WHERE guild_id IS ?", [guild_id]) if guild_id is not None else ("", [])
        rows = self._rows(
            f"SELECT kind, COALESCE(SUM(credits), 0) AS total FROM ledger {where} GROUP BY kind",  # noqa: S608
            params,
        )
        return {r["kind"]: int(r["total"]) for r in rows}

    @_in_thread
    def usage(
        self, guild_id: int | None, user_id: int, period_start: datetime, month_start: datetime
    ) -> UsageSnapshot:
        return self._usage(guild_id, user_id, period_start, month_start)

    @_in_thread
    def policy(self, guild_id: int | None, user_id: int, role_ids: Iterable[int] = ()) -> PolicyRows:
        return self._policy(guild_id, user_id, role_ids)

    # The bot's own state ------------------------------------------------------------------------------
    @_in_thread
    def get_state(self, key: str) -> Any:
        """A JSON value stored with `set_state`, or None."""
        row = self._one("SELECT value FROM bot_state WHERE key = ?", [key])
        return json.loads(row["value"]) if row else None

    @_in_thread
    def set_state(self, key: str, value: Any) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [key, json.dumps(value), iso(utcnow())],
            )

    @_in_thread
    def ping(self) -> bool:
        """One trivial query: the database answers (the health check)."""
        return self._scalar("SELECT 1") == 1

    # Moderator policy ---------------------------------------------------------------------------------
    @_in_thread
    def guild_settings(self, guild_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM guild_settings WHERE guild_id = ?", [guild_id]) or {
            "guild_id": guild_id
        }
        for key in ("allowed_channels", "blocklist"):
            row[key] = json.loads(row.get(key) or "[]")
        return row

    @_in_thread
    def set_guild_settings(self, guild_id: int, actor_id: int | None, **fields: Any) -> None:
        for key in ("allowed_channels", "blocklist"):
            if key in fields:
                fields[key] = json.dumps(fields[key])
        now = utcnow()
        with self._write():
            self.db["guild_settings"].upsert(
                {
                    "guild_id": guild_id,
                    **{k: _encode(v) for k, v in fields.items()},
                    "updated_at": iso(now),
                    "updated_by": actor_id,
                },
                pk="guild_id",
            )
            self._policy_change(guild_id, actor_id, fields, now)

    @_in_thread
    def set_role_limit(self, guild_id: int, role_id: int, credits: int | None, actor_id: int | None) -> None:
        now = utcnow()
        with self._write():
            if credits is None:
                self.db.execute(
                    "DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", [guild_id, role_id]
                )
            else:
                self.db["role_limits"].upsert(
                    {"guild_id": guild_id, "role_id": role_id, "credits": credits}, pk=("guild_id", "role_id")
                )
            self._policy_change(guild_id, actor_id, {"role": role_id, "credits": credits}, now)

    @_in_thread
    def set_member_policy(self, guild_id: int, user_id: int, actor_id: int | None, **fields: Any) -> None:
        now = utcnow()
        with self._write():
            self.db["member_policy"].upsert(
                {"guild_id": guild_id, "user_id": user_id, **{k: _encode(v) for k, v in fields.items()}},
                pk=("guild_id", "user_id"),
            )
            self._policy_change(guild_id, actor_id, {"member": user_id, **fields}, now)

    @_in_thread
    def grant(
        self, guild_id: int, user_id: int, credits: int, actor_id: int | None, note: str | None = None
    ) -> None:
        now = utcnow()
        with self._write():
            self.db.execute(
                "INSERT INTO ledger (guild_id, user_id, job_id, kind, credits, usd, at, actor_id, note) "
                "VALUES (?, ?, NULL, 'grant', ?, 0, ?, ?, ?)",
                [guild_id, user_id, credits, iso(now), actor_id, note],
            )
            self._policy_change(guild_id, actor_id, {"grant": user_id, "credits": credits}, now)

    def _policy_change(
        self, guild_id: int, actor_id: int | None, change: dict[str, Any], at: datetime
    ) -> None:
        self.db.execute(
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
    def member_totals(self, guild_id: int | None, user_id: int) -> dict[str, Any]:
        """Lifetime figures of one member in one server; a video counts once it was paid for (charged).
        Only jobs of the store's mode count (see `trial`)."""
        row = self._one(
            "SELECT COUNT(*) AS jobs, "
            "COALESCE(SUM(charge_state = 'charged'), 0) AS succeeded, "
            "COALESCE(SUM(state = 'failed'), 0) AS failed, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN credits END), 0) AS credits, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN cost_usd END), 0) AS usd, "
            "COALESCE(SUM(CASE WHEN charge_state = 'charged' THEN duration END), 0) AS seconds "
            "FROM jobs WHERE guild_id IS ? AND user_id = ? AND simulated = ?",
            [guild_id, user_id, int(self.trial)],
        )
        assert row is not None
        return row

    @_in_thread
    def active_jobs(self, guild_id: int | None, user_id: int) -> list[Job]:
        active = [s.value for s in ACTIVE_STATES]
        rows = self._rows(
            f"SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? AND state IN ({','.join('?' * len(active))}) "  # noqa: S608, E501
            "ORDER BY id",
            [guild_id, user_id, *active],
        )
        return [Job.from_row(r) for r in rows]

    @_in_thread
    def guild_spent(self, guild_id: int, since: datetime) -> float:
        """USD reserved or charged since `since` by jobs of the store's mode: what counts against the
        monthly budget."""
        return float(
            self._scalar(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id = ? AND created_at >= ? "
                "AND charge_state IN ('reserved', 'charged') AND simulated = ?",
                [guild_id, iso(since), int(self.trial)],
            )
        )

    @_in_thread
    def report_rows(self, guild_id: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """One row per job of the server created since `since` (all time when None), oldest first."""
        columns = ", ".join(self.REPORT_COLUMNS)
        return self._rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",  # noqa: S608
            [guild_id, iso(since) if since else ""],
        )

    @_in_thread
    def report_events(self, guild_id: int, since: datetime | None = None) -> dict[int, list[dict[str, Any]]]:
        """The audit trail (state and time of every transition) of the same jobs, by job id."""
        rows = self._rows(
            "SELECT e.job_id, e.state, e.at, e.detail FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.guild_id = ? AND j.created_at >= ? ORDER BY e.job_id, e.id",
            [guild_id, iso(since) if since else ""],
        )
        out: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row.pop("job_id"), []).append(row)
        return out

    @_in_thread
    def undelivered_jobs(self, guild_id: int, limit: int = 25) -> list[dict[str, Any]]:
        """Videos that were made and paid for but reached nobody (any age): moderators should see them."""
        columns = ", ".join(self.REPORT_COLUMNS)
        return self._rows(
            f"SELECT {columns} FROM jobs WHERE guild_id = ? AND state = ? ORDER BY id DESC LIMIT ?",  # noqa: S608
            [guild_id, JobState.UNDELIVERED.value, limit],
        )

    @_in_thread
    def policy_overview(self, guild_id: int, changes: int = 5) -> dict[str, Any]:
        """Everything /quota show and /settings show list: role tiers, member overrides, recent changes."""
        roles = self._rows(
            "SELECT role_id, credits FROM role_limits WHERE guild_id = ? ORDER BY credits DESC", [guild_id]
        )
        members = self._rows(
            "SELECT user_id, credits, blocked, max_concurrent, usage_reset_at FROM member_policy "
            "WHERE guild_id = ? AND (credits IS NOT NULL OR blocked = 1 OR max_concurrent IS NOT NULL) "
            "ORDER BY user_id",
            [guild_id],
        )
        recent = self._rows(
            "SELECT actor_id, change, at FROM policy_changes WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            [guild_id, changes],
        )
        return {"roles": roles, "members": members, "changes": recent}
