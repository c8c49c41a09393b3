"""The runner's shared state and the writes every part makes: fenced state moves, failing a job with a
refund, telling the reporter, and the one task that drives each job through the per-state steps.

`bot/core/jobs.py` composes this base with the lease keeper (`leases.py`), the submit pacing (`pacing.py`),
the per-state steps (`steps.py`) and the housekeeping (`housekeeping.py`) into `JobRunner`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from .. import media, metrics, redaction
from ..models import AT_NOVITA, RESTING_STATES, ChargeState, InvalidTransition, Job, JobState, utcnow
from ..novita import NovitaAPI
from ..reporting import ConsoleReporter, Reporter, job_log
from ..settings import Settings
from ..store import Store

log = logging.getLogger("bot.jobs")

REFUNDED = "Your credits were returned."
BALANCE_PAUSE = "no balance"  # the detail of a submit pause set because Novita's account is out of credit
CLAIM_BATCH = 200  # unfinished jobs taken per claim query
MAX_PREPARE_ATTEMPTS = 3  # image preparations begun for one job (each one a restart after a crash)

Step = Callable[[Any, Job], Awaitable[None]]


class RunnerBase:
    """State and primitives shared by the runner's parts (one instance: the composed `JobRunner`)."""

    _steps: ClassVar[dict[JobState, Step]]  # filled in by JobRunner: what drives a job in each state

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        novita: NovitaAPI,
        http: aiohttp.ClientSession,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.novita = novita
        self.http = http
        self.reporter: Reporter = reporter or ConsoleReporter()
        # The process's name on the leases it holds: host, pid and a per-start nonce, so that a restarted
        # process (even one that got the same pid) is a new owner.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._queue: collections.OrderedDict[int, asyncio.Future[Job]] = collections.OrderedDict()
        self._wake = (
            asyncio.Event()
        )  # the local queue changed, a Novita slot freed, or another process said so
        self._claim_now = asyncio.Event()
        self._at_novita: set[int] = set()
        self._positions_pending = False
        self._global_queue: list[int] = []  # every process's queued jobs, oldest first (the member's place)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._settled: dict[int, asyncio.Event] = {}
        self._submit_failures: collections.Counter[int] = collections.Counter()
        self._submitting: set[int] = set()  # jobs whose submit request may be on the wire
        self._delivering: set[int] = set()  # jobs being posted right now
        # Jobs this process put to rest whose drivers are still reporting the end: no lease to renew.
        self._resting: set[int] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._running = False
        self.paused_until: float | None = None  # wall clock: submits wait after Novita said "no balance"
        settings.images_dir.mkdir(parents=True, exist_ok=True)
        settings.videos_dir.mkdir(parents=True, exist_ok=True)
        # Every entry's image is prepared through media.normalise_image: bound how many at once, process-wide.
        media.limit_concurrent_images(settings.image_max_concurrent)

    @property
    def queue_length(self) -> int:
        """Jobs waiting in the local queue for a submit turn."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Jobs holding a Novita slot."""
        return len(self._at_novita)

    def _spawn_background(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s crashed", task.get_name(), exc_info=task.exception())

    # Driving one job ----------------------------------------------------------------------------------
    async def _move(self, job_id: int, state: JobState, **kwargs: Any) -> Job:
        """A state write fenced by this process's lease (InvalidTransition when another process holds it)."""
        job = await self.store.transition(job_id, state, owner=self.owner, **kwargs)
        self._track(job)
        if job.state in RESTING_STATES:
            self._resting.add(job_id)
        return job

    def _track(self, job: Job) -> None:
        """Keep the in-flight count (a metric) in step with this process's jobs."""
        if job.state in AT_NOVITA:
            self._at_novita.add(job.id)
        else:
            self._at_novita.discard(job.id)

    async def _update_job(self, job_id: int, **fields: Any) -> Job:
        return await self.store.update_job(job_id, owner=self.owner, **fields)

    def _drive(self, job_id: int) -> None:
        if job_id in self._tasks and not self._tasks[job_id].done():
            return
        task = asyncio.create_task(self._run_job(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(functools.partial(self._job_task_done, job_id))

    def _job_task_done(self, job_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
            self._at_novita.discard(job_id)
            self._resting.discard(job_id)

    async def _run_job(self, job_id: int) -> None:
        jlog = job_log(job_id)
        try:
            while True:
                job = await self.store.get_job(job_id)
                if job is None or job.state in RESTING_STATES:
                    return
                step = self._steps[job.state]
                await step(self, job)
        except asyncio.CancelledError:
            raise
        except InvalidTransition as exc:
            # Every runner write states the state it expects; a refusal means someone else (a cancel, or
            # another driver) moved this job first. That driver owns it now: stop, neither fail nor refund.
            jlog.info("no longer driving: %s", exc)
            self._release_slot(job_id)
        except Exception as exc:
            jlog.exception("crashed; ending the job")
            await self._crash_end(job_id, exc)
        finally:
            if job_id in self._settled:
                job = await _quiet(self.store.get_job(job_id))
                if job is None or job.state in RESTING_STATES:
                    self._settled.pop(job_id).set()

    async def _crash_end(self, job_id: int, exc: Exception) -> None:
        job = await self.store.get_job(job_id)
        if job is None or job.state in RESTING_STATES:
            return
        self._release_slot(job_id)
        if job.state == JobState.DELIVERING:
            job = await self._move(
                job_id,
                JobState.UNDELIVERED,
                detail=redaction.clip(repr(exc), 1000),
                expect=(JobState.DELIVERING,),
                error="Something went wrong while posting the video. It is kept; use /jobs to get it.",
            )
        else:
            job = await self._move(
                job_id,
                JobState.FAILED,
                charge=ChargeState.REFUNDED,
                detail=redaction.clip(repr(exc), 1000),
                expect=(job.state,),
                error=f"Something went wrong on our side. {REFUNDED} Please try again.",
                error_detail=redaction.clip(repr(exc), 500),
                finished_at=utcnow(),
            )
        await self._ended(job)

    async def _changed(self, job: Job) -> None:
        try:
            self.reporter.job_changed(job)
        except Exception:
            job_log(job.id).exception("reporter.job_changed failed")

    async def _ended(self, job: Job) -> None:
        self._cleanup_inputs(job)
        if job.state in RESTING_STATES:
            metrics.job_rested(job)
        try:
            await self.reporter.job_ended(job)
        except Exception:
            job_log(job.id).exception("reporter.job_ended failed")
        if job.id in self._settled and job.state in RESTING_STATES:
            self._settled.pop(job.id).set()

    async def _fail(self, job: Job, error: str, detail: str | None = None, **fields: Any) -> Job:
        job_log(job.id).warning("failed: %s | %s", error, detail or "")
        self._release_slot(job.id)
        job = await self._move(
            job.id,
            JobState.FAILED,
            charge=ChargeState.REFUNDED,
            detail=redaction.clip(detail or error, 1000),
            expect=(job.state,),
            error=error,
            error_detail=redaction.clip(detail or "", 2000) or None,
            finished_at=utcnow(),
            **fields,
        )
        await self._ended(job)
        return job

    def _release_slot(self, job_id: int) -> None:
        """The job no longer waits for or holds a Novita slot: let the dispatcher look again."""
        self._wake.set()

    def _cleanup_inputs(self, job: Job) -> None:
        """A raw upload left by a job that ended before it was normalised goes. The normalised input stays
        for the retention period, so Regenerate can reuse the exact first frame after Discord's link died."""
        if job.state not in RESTING_STATES:
            return
        for path in (job.image_path, job.last_frame_path):
            if path and path.endswith(".src"):
                with contextlib.suppress(OSError):
                    Path(path).unlink(missing_ok=True)


async def _quiet(coro: Awaitable[Job | None]) -> Job | None:
    try:
        return await coro
    except Exception:
        return None
