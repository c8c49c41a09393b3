"""The store's foundation: the worker-thread decorators every query uses, the shared row helpers, and
`StoreBase`, the part of `Store` that opens, closes and runs calls. The queries themselves are grouped by
concern in `jobs.py` (admission, transitions, leases), `pacing.py` (Novita's shared limits), `policy.py`
(moderator settings and limits) and `reports.py`; `core.py` composes them into `Store`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..models import (
    InvalidTransition,
    Job,
    iso,
)
from .tx import Tx
from .worker import BACKGROUND, INTERACTIVE, LEASES, Worker

log = logging.getLogger("bot.store")

P = ParamSpec("P")
R = TypeVar("R")


JOB_COLUMNS = frozenset(f.name for f in dataclasses.fields(Job)) - {"id"}


def encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return value


WAKE_CHANNEL = "hailuo_wake"  # PostgreSQL NOTIFY channel: a slot freed, a job to claim, a pause
SUBMIT_TURN_LOCK = 7_146_821_001  # advisory lock key: one submit-turn decision at a time, in every process


def marks(n: int) -> str:
    return ",".join("?" * n)


def check_lease(job: Job, owner: str | None) -> None:
    """A fenced write (with `owner`) is refused unless that process holds the job's lease."""
    if owner is not None and job.lease_owner != owner:
        raise InvalidTransition(f"job {job.id} is driven by {job.lease_owner or 'no process'}, not {owner}")


S = TypeVar("S", bound="StoreBase")
Method = Callable[Concatenate[S, Tx, P], R]
Coroutine = Callable[Concatenate[S, P], Awaitable[R]]


def _on_worker(priority: int) -> Callable[[Method[S, P, R]], Coroutine[S, P, R]]:
    """Make a synchronous method `(self, tx, ...)` a coroutine that runs its body on a worker thread."""

    def decorate(fn: Method[S, P, R]) -> Coroutine[S, P, R]:
        @functools.wraps(fn)
        async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
            return await self._run(lambda tx: fn(self, tx, *args, **kwargs), priority)

        return wrapper

    return decorate


# A member's request (waiting inside Discord's 3-second window) goes ahead of the runner's steady stream of
# progress writes; a lease renewal goes ahead of both: one that waits behind a flood of calls until the lease
# has run out hands this process's jobs to another while it still drives them.
in_thread = _on_worker(INTERACTIVE)
in_background = _on_worker(BACKGROUND)
for_leases = _on_worker(LEASES)


class StoreBase:
    """Opening, closing and running calls on the worker; `open` comes from the engine's subclass."""

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
            [*(encode(v) for v in fields.values()), job_id],
        )
