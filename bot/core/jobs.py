"""The job runner: local queue, Novita pacing, polling, download, hand-off to delivery, resume on start.

Each job is driven by one supervised task that reads its state from the store and moves it on, one committed
transition at a time, so a restart can pick up every unfinished job where it stood. The runner knows nothing
about Discord: it reports through the small `Reporter` interface of `bot/core/reporting.py` (Discord's is
`bot/discord_side/delivery.py`; the console one there serves the CLI and tests).

`JobRunner` is composed of mixins sharing one state (`bot/core/runner/`): `base.py` (state, fenced writes,
the driver task), `leases.py` (claiming and renewing), `pacing.py` (queue and submit turns), `steps.py`
(what each state does) and `housekeeping.py` (retention). Mixins rather than collaborator objects because
every part reads and writes the same per-job bookkeeping (queue, slots, tasks), which one object keeps
consistent without passing it around.

Resume rules (docs/reliability.md, Crashes): `accepted`/`queued` jobs are prepared and queued again;
`submitting` means "we may have paid" and is reported and refunded, never re-submitted; `submitted`/
`processing` are polled; `downloading` polls once more for a fresh link; `delivering` is handed to the
reporter again, which must make a second delivery of the same job impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from . import metrics, quota
from .models import RESTING_STATES, ChargeState, InvalidTransition, Job, JobRequest, JobState, utcnow
from .reporting import job_log
from .runner.base import BALANCE_PAUSE, CLAIM_BATCH, MAX_PREPARE_ATTEMPTS, REFUNDED, log
from .runner.housekeeping import Housekeeping
from .runner.leases import LeaseKeeping
from .runner.steps import JobSteps

__all__ = ["BALANCE_PAUSE", "CLAIM_BATCH", "MAX_PREPARE_ATTEMPTS", "REFUNDED", "JobRunner"]


class JobRunner(JobSteps, LeaseKeeping, Housekeeping):
    """Drives every job this process holds from admission to its end; see the module docstring."""

    _steps = {  # noqa: RUF012
        JobState.ACCEPTED: JobSteps._step_accepted,
        JobState.QUEUED: JobSteps._step_queued,
        JobState.SUBMITTING: JobSteps._step_submitting,
        JobState.SUBMITTED: JobSteps._step_polling,
        JobState.PROCESSING: JobSteps._step_polling,
        JobState.DOWNLOADING: JobSteps._step_downloading,
        JobState.DELIVERING: JobSteps._step_delivering,
    }

    # Lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every unfinished job this process may drive, then keep claiming, renewing and dispatching.

        On SQLite this process is the only one (the instance lock), so it takes every unfinished job at once.
        On PostgreSQL it takes the jobs no live process holds, and later those whose process died (their
        lease ran out), by the same rules as a restart."""
        self._running = True
        self.store.on_wake(self._woken)
        await self._claim(steal=self.store.single_process, verb="resuming")
        metrics.watch_runner(lambda: self.queue_length, lambda: self.in_flight)
        self._spawn_background(self._dispatch(), "dispatcher")
        self._spawn_background(self._claimer(), "claimer")
        self._spawn_background(self._renewer(), "lease-renewer")
        self._spawn_background(self._janitor(), "janitor")

    async def stop(self, grace: float | None = None) -> None:
        """Stop driving jobs. A submit on the wire or a delivery under way gets `grace` seconds to finish,
        so a clean shutdown neither leaves a job in `submitting` nor cuts an upload. The rest resumes."""
        self._running = False
        grace = self.settings.novita_request_timeout_s if grace is None else grace
        critical = [t for jid, t in self._tasks.items() if jid in self._submitting or jid in self._delivering]
        if critical:
            log.info("waiting up to %.0fs for %d submit(s)/delivery(ies) to finish", grace, len(critical))
            await asyncio.wait(critical, timeout=grace)
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._background.clear()
        try:  # another process may take them over at once instead of waiting for the leases to run out
            await self.store.release_leases(self.owner)
        except Exception:
            log.exception("releasing leases failed; they run out on their own")

    # Entry points --------------------------------------------------------------------------------------
    async def submit(self, request: JobRequest) -> tuple[Job | None, quota.Decision]:
        """Admit a request (atomic quota check and credit reservation). The caller answers the member, then
        calls `start_job`; a crash in between leaves an `accepted` job that the next start resumes."""
        if self.settings.novita_mode == "simulate":  # trial mode: every card and result says so
            request = replace(request, simulated=True)
        raw: Path | None = None
        if request.image_bytes is not None:
            # Saved before admission so the job row is born with its path: one write while the member waits.
            raw = self.settings.images_dir / f"upload-{uuid.uuid4().hex}.src"
            await asyncio.to_thread(raw.write_bytes, request.image_bytes)
            request = replace(request, image_path=str(raw))
        raw_last: Path | None = None
        if request.last_frame_bytes is not None:  # Regenerate keeps both frames
            raw_last = self.settings.images_dir / f"upload-{uuid.uuid4().hex}.src"
            await asyncio.to_thread(raw_last.write_bytes, request.last_frame_bytes)
            request = replace(request, last_frame_path=str(raw_last))
        # One process (SQLite): the job is this process's from the first moment. Several (PostgreSQL): it is
        # born free, and whichever runner claims it first (this one, or a worker woken by NOTIFY) drives it.
        lease = None
        if self.store.single_process:
            lease = (self.owner, utcnow() + timedelta(seconds=self.settings.job_lease_s))
        job, decision = await quota.admit(self.store, self.settings, request, lease=lease)
        if job is None and raw is not None:
            await asyncio.to_thread(raw.unlink, missing_ok=True)
        if job is None and raw_last is not None:
            await asyncio.to_thread(raw_last.unlink, missing_ok=True)
        if job is not None:
            job_log(job.id).info(
                "accepted user=%s guild=%s model=%s %s %ss credits=%s entry=%s",
                job.user_id,
                job.guild_id,
                job.model,
                job.resolution,
                job.duration,
                job.credits,
                job.entry,
            )
        return job, decision

    def start_job(self, job_id: int) -> None:
        """The member has their answer: the job may move. With several processes, claim it like any other."""
        if self.store.single_process:
            self._drive(job_id)
        else:
            self._claim_now.set()

    async def cancel(self, job_id: int, reason: str = "Cancelled by the requester.") -> Job | None:
        """Cancel a job still waiting locally (accepted or queued), with a refund. None if too late.

        The cancel wins or loses in one conditional write: if the runner's `queued -> submitting` write
        commits first, the cancel finds the job submitting and says so; if the cancel commits first, the
        runner's write is refused and its driver stops (see `_run_job`). Nothing is read-then-written."""
        try:
            job = await self.store.transition(
                job_id,
                JobState.CANCELLED,
                charge=ChargeState.REFUNDED,
                detail=reason,
                expect=(JobState.ACCEPTED, JobState.QUEUED),
                error=f"{reason} {REFUNDED}",
                finished_at=utcnow(),
            )
        except (InvalidTransition, KeyError):
            return None
        fut = self._queue.pop(job_id, None)
        self._forget_queued(job_id)
        if fut is not None and not fut.done():
            fut.cancel()
        task = self._tasks.pop(job_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._release_slot(job_id)
        self._wake.set()
        await self._ended(job)
        return job

    async def redeliver(self, job_id: int) -> Job:
        """Deliver an `undelivered` job again from the retained file."""
        until = utcnow() + timedelta(seconds=self.settings.job_lease_s)
        job = await self.store.transition(
            job_id,
            JobState.DELIVERING,
            expect=(JobState.UNDELIVERED,),
            lease_owner=self.owner,  # whoever asked drives the new delivery
            lease_until=until,
        )
        self._resting.discard(job.id)
        self._drive(job.id)
        return job

    async def wait_settled(self, job_id: int, within: float | None = None) -> Job:
        """Wait until the job rests (delivered, failed, cancelled or undelivered); for the CLI and tests."""
        job = await self.store.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.state not in RESTING_STATES:
            event = self._settled.setdefault(job_id, asyncio.Event())
            async with asyncio.timeout(within):
                await event.wait()
            job = await self.store.get_job(job_id)
            assert job is not None
        return job
