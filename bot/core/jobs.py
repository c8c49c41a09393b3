"""The job runner: local queue, Novita pacing, polling, download, hand-off to delivery, resume on start.

Each job is driven by one supervised task that reads its state from the store and moves it on, one committed
transition at a time, so a restart can pick up every unfinished job where it stood. The runner knows nothing
about Discord: it reports through the small `Reporter` interface of `bot/core/reporting.py` (Discord's is
`bot/discord_side/delivery.py`; the console one there serves the CLI and tests).

Resume rules (docs/reliability.md, Crashes): `accepted`/`queued` jobs are prepared and queued again;
`submitting` means "we may have paid" and is reported and refunded, never re-submitted; `submitted`/
`processing` are polled; `downloading` polls once more for a fresh link; `delivering` is handed to the
reporter again, which must make a second delivery of the same job impossible.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from . import media, metrics, quota, redaction
from .i18n import Text, _, join, plural
from .models import (
    AT_NOVITA,
    RESTING_STATES,
    ChargeState,
    InvalidTransition,
    Job,
    JobRequest,
    JobState,
    utcnow,
)
from .novita import (
    GenerationRequest,
    NovitaClient,
    NovitaError,
    NovitaNoBalance,
    TaskResult,
    TaskStatus,
)
from .polling import PollPlan
from .reporting import ConsoleReporter, DeliveryFailed, Reporter, job_log
from .settings import Settings
from .store import Store

log = logging.getLogger("bot.jobs")

REFUNDED = _("Your credits were returned.")
TRY_AGAIN = _("Please try again.")
TRY_AGAIN_IN_A_MINUTE = _("Try again in a minute.")
CANCELLED_BY_REQUESTER = _("Cancelled by the requester.")
LOST_CONTACT = _(
    "We lost contact with the video service while sending your request, so we can't tell whether it started."
)
BALANCE_PAUSE = "no balance"  # the detail of a submit pause set because Novita's account is out of credit
CLAIM_BATCH = 200  # unfinished jobs taken per claim query
MAX_PREPARE_ATTEMPTS = 3  # image preparations begun for one job (each one a restart after a crash)


class JobRunner:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        novita: NovitaClient,
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

    def _woken(self, reason: str) -> None:
        """Another process freed a Novita slot, released jobs, or paused submits (PostgreSQL NOTIFY)."""
        self._wake.set()
        if reason == "claim":
            self._claim_now.set()

    async def _claim(self, steal: bool = False, verb: str = "taking over") -> None:
        while True:
            jobs = await self.store.claim_jobs(
                self.owner,
                self.settings.job_lease_s,
                CLAIM_BATCH,
                steal=steal,
                # A trial-mode runner leaves live jobs alone (they wait for live mode); a live one takes
                # simulated jobs too, to end them with a refund.
                only_simulated=self.settings.novita_mode == "simulate",
            )
            if jobs:
                listed = ", ".join(f"{j.id}:{j.state}" for j in jobs)
                log.info("%s %d unfinished job(s): %s", verb, len(jobs), listed)
            trial = self.settings.novita_mode == "simulate"
            for job in jobs:
                if job.simulated != trial and job.state != JobState.DELIVERING:  # a delivery needs no Novita
                    self._spawn_background(self._other_mode(job, trial), f"mode-{job.id}")
                    continue
                self._drive(job.id)
            if len(jobs) < CLAIM_BATCH:
                return

    async def _claimer(self) -> None:
        """Take over jobs whose process died: each lease that runs out is claimed within a poll interval."""
        interval = min(2.0, self.settings.job_lease_s / 3)
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claim_now.wait(), interval)
            self._claim_now.clear()
            try:
                await self._claim()
            except Exception:
                log.exception("claiming jobs failed; will retry")

    async def _renewer(self) -> None:
        """Renew this process's leases well before they run out; stop driving any job another process took."""
        interval = self.settings.job_lease_s / 3
        while self._running:
            await asyncio.sleep(interval)
            # A job put to rest has no lease any more (nobody drives it), but its driver may still be
            # telling the member: that is not a job lost to another process.
            driving = [
                jid for jid, task in self._tasks.items() if not task.done() and jid not in self._resting
            ]
            try:
                held = await self.store.renew_leases(self.owner, self.settings.job_lease_s, driving)
            except Exception:
                log.exception("renewing leases failed; will retry")
                continue
            for job_id in set(driving) - held:
                # Not renewed: another process took the job, or it rests (no lease any more) and its driver
                # may still be telling the member how it ended. Only the first stops the driver.
                try:
                    job = await self.store.get_job(job_id)
                except Exception:
                    log.exception("reading job %s failed; its fenced writes will tell", job_id)
                    continue
                if job is None or job.lease_owner in (None, self.owner):
                    continue
                task = self._tasks.get(job_id)
                if task is not None and not task.done():
                    job_log(job_id).warning("lease lost to another process; no longer driving")
                    task.cancel()

    async def _other_mode(self, job: Job, trial: bool) -> None:
        """An unfinished job from before NOVITA_MODE changed. A simulated one is ended with a refund: the
        live service must never be asked (or paid) for it. A real one waits, untouched, for live mode."""
        if trial:
            job_log(job.id).warning("a live job waits for NOVITA_MODE=live (it is %s)", job.state)
            return
        await self._fail(
            job,
            join(
                _("The bot left trial mode before this simulated video was done, so it was stopped."),
                REFUNDED,
            ),
            "simulated job found by a live runner; not sent to Novita",
        )

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

    def _spawn_background(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s crashed", task.get_name(), exc_info=task.exception())

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

    async def cancel(self, job_id: int, reason: Text | str = CANCELLED_BY_REQUESTER) -> Job | None:
        """Cancel a job still waiting locally (accepted or queued), with a refund. None if too late.

        The cancel wins or loses in one conditional write: if the runner's `queued -> submitting` write
        commits first, the cancel finds the job submitting and says so; if the cancel commits first, the
        runner's write is refused and its driver stops (see `_run_job`). Nothing is read-then-written."""
        try:
            job = await self.store.transition(
                job_id,
                JobState.CANCELLED,
                charge=ChargeState.REFUNDED,
                detail=str(reason),
                expect=(JobState.ACCEPTED, JobState.QUEUED),
                error=join(reason, REFUNDED).dumps(),
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

    def queue_position(self, job_id: int) -> int | None:
        """The job's place among every process's waiting jobs (as last read), else in this process's queue."""
        with contextlib.suppress(ValueError):
            return self._global_queue.index(job_id) + 1
        for position, queued in enumerate(self._queue, start=1):
            if queued == job_id:
                return position
        return None

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
                error=_(
                    "Something went wrong while posting the video. It is kept; use /jobs to get it."
                ).dumps(),
            )
        else:
            job = await self._move(
                job_id,
                JobState.FAILED,
                charge=ChargeState.REFUNDED,
                detail=redaction.clip(repr(exc), 1000),
                expect=(job.state,),
                error=join(_("Something went wrong on our side."), REFUNDED, TRY_AGAIN).dumps(),
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

    async def _fail(self, job: Job, error: Text, detail: str | None = None, **fields: Any) -> Job:
        """End the job with a refund. `error` is for the member (stored as a `Text`, shown in their language);
        `detail` for moderators and the log."""
        job_log(job.id).warning("failed: %s | %s", error, detail or "")
        self._release_slot(job.id)
        job = await self._move(
            job.id,
            JobState.FAILED,
            charge=ChargeState.REFUNDED,
            detail=redaction.clip(detail or str(error), 1000),
            expect=(job.state,),
            error=error.dumps(),
            error_detail=redaction.clip(detail or "", 2000) or None,
            finished_at=utcnow(),
            **fields,
        )
        await self._ended(job)
        return job

    # accepted -> queued: fetch and normalise the frames so Novita never has to fetch Discord's links.
    async def _step_accepted(self, job: Job) -> None:
        update: dict[str, Any] = {}
        frames = [
            (field, url, raw, self.settings.images_dir / name, label)
            for field, url, raw, name, label in (
                ("image_path", job.image_url, job.image_path, f"{job.id}.jpg", None),
                (
                    "last_frame_path",
                    job.last_frame_url,
                    job.last_frame_path,
                    f"{job.id}-last.jpg",
                    _("Last frame: {problem}"),
                ),
            )
            if url or raw
        ]
        todo = [f for f in frames if not await asyncio.to_thread(f[3].exists)]
        if todo:
            if job.prepare_attempts >= MAX_PREPARE_ATTEMPTS:
                # Each earlier attempt ended with the process (an image that exhausts memory while it is
                # decoded, say): fail it rather than crash on every restart.
                await self._fail(
                    job,
                    join(
                        _("This image stopped the bot each time it was opened, so it can't be used."),
                        REFUNDED,
                        _("Try a smaller image."),
                    ),
                    f"image preparation began {job.prepare_attempts} times without finishing",
                )
                return
            job = await self._update_job(job.id, prepare_attempts=job.prepare_attempts + 1)
        for _field, url, raw, dest, label in todo:
            try:
                await self._prepare_frame(url, raw, dest)
            except media.MediaError as exc:
                problem = label.with_params(problem=exc.user_message) if label else exc.user_message
                await self._fail(job, join(problem, REFUNDED), str(exc))
                return
        for field, _url, _raw, dest, _label in frames:
            update[field] = str(dest)
        job = await self._move(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,), **update)
        job_log(job.id).info("queued (position %d)", len(self._queue) + 1)
        await self._changed(job)

    async def _prepare_frame(self, url: str | None, raw_path: str | None, dest: Path) -> None:
        """A frame from the member's upload (kept as a raw file) or Discord's CDN, normalised to `dest`;
        the raw file goes once the normalised copy exists (MediaError when it can't be used)."""
        raw = Path(raw_path) if raw_path else None
        if raw is not None and await asyncio.to_thread(raw.exists):
            data = await asyncio.to_thread(raw.read_bytes)
        elif url:
            data = await media.download_image(self.http, url, origins=self.settings.image_origins)
        else:
            raise media.ImageRejected(_("The image for this job was lost before it could be used."))
        image = await media.normalise_image(data)
        await asyncio.to_thread(dest.write_bytes, image.jpeg)
        if raw is not None:
            await asyncio.to_thread(raw.unlink, missing_ok=True)

    # A pause after Novita said the account is out of credit: queued jobs wait, and their cards say why.
    async def pause_for_balance(self) -> None:
        """Novita said the account is out of credit: every process holds its submits for a while (no retry
        storm), and the cards of queued jobs say why."""
        seconds = self.settings.novita_balance_pause_s
        await self.store.pause_submits(seconds, BALANCE_PAUSE)
        self.paused_until = time.time() + seconds
        log.warning("Novita account out of credit: submits pause for %.0f s", seconds)
        self._notify_queue_positions()

    def queue_notice(self) -> Text | None:
        """One sentence for the cards of queued jobs while submits are paused, else None."""
        if self.paused_until is None or self.paused_until <= time.time():
            return None
        when = f"<t:{int(self.paused_until)}:R>"
        return _(
            "The server's video account is out of credit, so jobs are waiting; the moderators have been "
            "told. Next try {when}.",
            when=when,
        )

    # queued -> submitting -> submitted
    async def _step_queued(self, job: Job) -> None:
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._queue[job.id] = fut
        if job.id in self._submit_failures:  # refused by Novita's rate limit: keep its place at the front
            self._queue.move_to_end(job.id, last=False)
        self._wake.set()
        try:
            job = await fut  # the dispatcher moved it to `submitting` once a slot and a rate token were ours
        finally:
            self._queue.pop(job.id, None)
        await self._submit(job)

    async def _dispatch(self) -> None:
        """Hand out submit turns in queue order while the in-flight and per-minute limits allow. The limits
        are kept in the store, for every process together: a turn is one atomic write there."""
        s = self.settings
        while self._running:
            head = next((jid for jid, fut in self._queue.items() if not fut.done()), None)
            if head is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            fut = self._queue[head]
            try:
                job, wait = await self.store.take_submit_turn(
                    head, self.owner, s.novita_rate_per_minute, s.novita_max_in_flight
                )
            except (InvalidTransition, KeyError) as exc:  # cancelled, or another process has it now
                self._queue.pop(head, None)
                if not fut.done():
                    fut.set_exception(InvalidTransition(str(exc)))
                continue
            except Exception:
                log.exception("taking a submit turn failed; will retry")
                job, wait = None, 1.0
            if job is not None:
                self._track(job)
                self._queue.pop(head, None)
                self._forget_queued(head)
                self._submitting.add(head)  # from now on a stop waits for its request
                if not fut.done():
                    fut.set_result(job)
                self._notify_queue_positions()
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(wait, 5.0))

    def _forget_queued(self, job_id: int) -> None:
        """This process moved the job out of the line: the places shown until the next read follow at once."""
        with contextlib.suppress(ValueError):
            self._global_queue.remove(job_id)

    def _notify_queue_positions(self) -> None:
        """Refresh the places in line and the cards of this process's waiting jobs, once for a burst of
        turns (one query for all of them, not one per job)."""
        if not self._positions_pending:
            self._positions_pending = True
            self._spawn_background(self._renotify_positions(), "positions")

    async def _renotify_positions(self) -> None:
        await asyncio.sleep(0)  # the turns handed out in this burst come first
        self._positions_pending = False  # a turn from here on schedules the next refresh
        waiting = await self.store.queued_jobs()
        self._global_queue = [job.id for job in waiting]
        with contextlib.suppress(Exception):  # a pause another process set (shown on the cards)
            until, detail = await self.store.submit_pause()
            if until is not None and detail == BALANCE_PAUSE:
                self.paused_until = until.timestamp()
        local = set(self._queue)
        for job in waiting:
            if job.id in local:
                await self._changed(job)

    def _release_slot(self, job_id: int) -> None:
        """The job no longer waits for or holds a Novita slot: let the dispatcher look again."""
        self._wake.set()

    def _generation_request(
        self, job: Job, image_uri: str | None, end_image_uri: str | None = None
    ) -> GenerationRequest:
        return GenerationRequest(
            prompt=job.full_prompt,
            duration=job.duration,
            resolution=job.resolution,
            prompt_expansion=job.prompt_expansion,
            image_data_uri=image_uri,
            model=job.model,
            end_image_data_uri=end_image_uri,
            image_source_url=job.image_url,
        )

    async def _submit(self, job: Job) -> None:
        jlog = job_log(job.id)
        image_uri = end_image_uri = None
        if job.image_path:
            image_uri = media.to_data_uri(await asyncio.to_thread(Path(job.image_path).read_bytes))
        if job.last_frame_path:
            end_image_uri = media.to_data_uri(await asyncio.to_thread(Path(job.last_frame_path).read_bytes))
        self._submitting.add(job.id)
        try:
            task_id = await self.novita.submit(self._generation_request(job, image_uri, end_image_uri))
        except NovitaError as exc:
            if exc.safe_to_resend:  # it provably started nothing: queue it again, after Novita's pause
                self._submit_failures[job.id] += 1
                if self._submit_failures[job.id] <= 5:
                    pause = exc.retry_after or min(60.0, 5.0 * self._submit_failures[job.id])
                    jlog.warning(
                        "submit refused (%s); back to the queue for %.1fs", type(exc).__name__, pause
                    )
                    await self.store.pause_submits(
                        pause, redaction.clip(f"{type(exc).__name__}: {exc.detail}", 500)
                    )
                    self._release_slot(job.id)
                    job = await self._move(
                        job.id,
                        JobState.QUEUED,
                        detail=f"requeued: {exc.detail}",
                        expect=(JobState.SUBMITTING,),
                    )
                    await self._changed(job)
                    return
            if isinstance(exc, NovitaNoBalance):
                await self.pause_for_balance()
            if exc.maybe_created:
                msg = join(LOST_CONTACT, REFUNDED, TRY_AGAIN_IN_A_MINUTE)
            else:
                msg = join(exc.user_message, REFUNDED)
            reason = f" {exc.reason}" if exc.reason else ""
            await self._fail(job, msg, f"{type(exc).__name__} status={exc.status}{reason} {exc.detail}")
            return
        finally:
            self._submitting.discard(job.id)
        now = utcnow()
        deadline = now + timedelta(minutes=self.settings.job_deadline_minutes)
        job = await self._move(
            job.id,
            JobState.SUBMITTED,
            expect=(JobState.SUBMITTING,),
            task_id=task_id,
            submitted_at=now,
            deadline_at=deadline,
        )
        self._submit_failures.pop(job.id, None)
        jlog.info("submitted task=%s", task_id)
        await self._changed(job)

    # submitted/processing -> downloading: poll with an eta-aware schedule, bounded by the deadline.
    async def _step_polling(self, job: Job) -> None:
        jlog = job_log(job.id)
        self._track(job)  # resumed or taken over: it holds a Novita slot
        s = self.settings
        plan = PollPlan(lo=s.poll_min_s, hi=s.poll_max_s, first=s.poll_first_s)
        assert job.task_id is not None
        deadline = job.deadline_at or utcnow() + timedelta(minutes=s.job_deadline_minutes)
        delay = plan.next_delay(time.monotonic(), job.eta_s, job.progress) if job.polls else s.poll_first_s
        while True:
            left = (deadline - utcnow()).total_seconds()
            if left <= 0:
                minutes = s.job_deadline_minutes
                await self._fail(
                    job,
                    join(
                        plural(
                            "The video took longer than {count} minute, so we stopped waiting.",
                            "The video took longer than {count} minutes, so we stopped waiting.",
                            round(minutes),
                        ),
                        REFUNDED,
                    ),
                    f"deadline passed in state {job.state} (task {job.task_id})",
                )
                return
            await asyncio.sleep(min(delay, left))
            try:
                result = await self.novita.get_result(job.task_id)
            except NovitaError as exc:
                jlog.warning("poll failed (%s: %s); will retry", type(exc).__name__, exc.detail)
                delay = min(s.poll_max_s, max(delay * 2, s.poll_first_s))
                continue
            now = time.monotonic()
            delay = plan.next_delay(now, result.eta_seconds, result.progress_percent)
            job = await self._record_poll(job, result, plan.expected_left(now))
            if result.status == TaskStatus.SUCCEED:
                self._release_slot(job.id)
                if not result.videos:
                    await self._fail(
                        job,
                        join(_("The video service finished but sent no video."), REFUNDED),
                        "TASK_STATUS_SUCCEED with an empty videos list",
                    )
                    return
                job = await self._move(
                    job.id, JobState.DOWNLOADING, expect=(job.state,), finished_at=utcnow()
                )
                await self._changed(job)
                await self._download(job, result)
                return
            if result.status == TaskStatus.FAILED:
                reason = result.reason.strip()
                if reason:  # Novita's own words, quoted exactly as written in every language
                    said = _("The video service couldn't make this video: “{reason}”.", reason=reason)
                else:
                    said = _("The video service couldn't make this video and gave no reason.")
                await self._fail(
                    job, join(said, REFUNDED), f"{result.raw_status}: {reason or 'no reason given'}"
                )
                return

    async def _record_poll(self, job: Job, result: TaskResult, eta_s: float | None) -> Job:
        """Store what the poll saw; `eta_s` is the smoothed estimate shown on the card."""
        fields: dict[str, Any] = {"polls": job.polls + 1}
        visible = False
        if result.raw_status != job.novita_status:
            fields["novita_status"] = result.raw_status
            visible = True
        if result.progress_percent is not None and result.progress_percent != job.progress:
            fields["progress"] = result.progress_percent
            visible = True
        if eta_s is not None:
            fields["eta_s"] = round(eta_s, 1)
        if result.status == TaskStatus.PROCESSING and job.state == JobState.SUBMITTED:
            job = await self._move(job.id, JobState.PROCESSING, expect=(JobState.SUBMITTED,), **fields)
            visible = True
        else:
            job = await self._update_job(job.id, **fields)
        if visible and result.status not in (TaskStatus.SUCCEED, TaskStatus.FAILED):
            await self._changed(job)
        return job

    async def _step_downloading(self, job: Job) -> None:
        """Resumed mid-download: the old link may have died with the process, so ask for a fresh one."""
        assert job.task_id is not None
        try:
            result = await self.novita.get_result(job.task_id)
        except NovitaError as exc:
            await self._fail(job, join(_("We couldn't fetch the finished video."), REFUNDED), exc.detail)
            return
        await self._download(job, result)

    async def _download(self, job: Job, result: TaskResult) -> None:
        jlog = job_log(job.id)
        dest = self.settings.videos_dir / f"{job.id}.mp4"
        last_error = ""
        for attempt in range(3):
            if attempt:
                await asyncio.sleep(min(10.0, 2.0**attempt))
                with contextlib.suppress(NovitaError):
                    result = await self.novita.get_result(job.task_id or "")
            video = result.video  # the MP4 wherever it is listed (a GIF preview may come first)
            if video is None:
                last_error = "no video in the task result"
                continue
            try:
                size = await media.download_video(
                    self.http, video.url, dest, timeout=self.settings.download_timeout_s
                )
            except media.MediaError as exc:
                last_error = str(exc)
                jlog.warning("download attempt %d failed: %s", attempt + 1, exc)
                continue
            jlog.info("downloaded %d bytes", size)
            job = await self._move(
                job.id,
                JobState.DELIVERING,
                charge=ChargeState.CHARGED,
                expect=(JobState.DOWNLOADING,),
                video_path=str(dest),
                video_bytes=size,
            )
            metrics.job_charged(job)
            await self._changed(job)
            await self._deliver(job)
            return
        await self._fail(job, join(_("We couldn't download the finished video."), REFUNDED), last_error)

    async def _step_delivering(self, job: Job) -> None:
        await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        jlog = job_log(job.id)
        video = Path(job.video_path or "")
        if not job.video_path or not await asyncio.to_thread(video.exists):
            job = await self._move(
                job.id,
                JobState.UNDELIVERED,
                detail="video file missing",
                expect=(JobState.DELIVERING,),
                error=_("The video file was lost before it could be posted.").dumps(),
            )
            await self._ended(job)
            return
        self._delivering.add(job.id)
        try:
            delivered = await self.reporter.deliver(job, video)
        except DeliveryFailed as exc:
            jlog.warning("undelivered: %s", exc.detail or exc.user_message)
            job = await self._move(
                job.id,
                JobState.UNDELIVERED,
                detail=redaction.clip(exc.detail, 1000) or None,
                expect=(JobState.DELIVERING,),
                error=exc.user_message.dumps(),
                error_detail=redaction.clip(exc.detail, 2000) or None,
            )
            await self._ended(job)
            return
        finally:
            self._delivering.discard(job.id)
        job = await self._move(
            job.id,
            JobState.DELIVERED,
            expect=(JobState.DELIVERING,),
            delivered_at=utcnow(),
            delivered_via=delivered.via,
            result_channel_id=delivered.channel_id,
            result_message_id=delivered.message_id,
            reencoded=delivered.reencoded,
            detail=delivered.via,
        )
        jlog.info("delivered via %s", delivered.via)
        metrics.job_delivered(job, utcnow())
        self._cleanup_inputs(job)
        if job.id in self._settled:
            self._settled.pop(job.id).set()

    async def _step_submitting(self, job: Job) -> None:
        """Found at start: the submit may have reached Novita (and been paid). Never send it again."""
        await self._fail(
            job,
            join(
                _("The bot restarted while sending your request, so we can't tell whether it started."),
                REFUNDED,
                TRY_AGAIN,
            ),
            "interrupted between submit and storing the task id; not re-submitted",
        )

    _steps: dict[JobState, Callable[[JobRunner, Job], Awaitable[None]]] = {  # noqa: RUF012
        JobState.ACCEPTED: _step_accepted,
        JobState.QUEUED: _step_queued,
        JobState.SUBMITTING: _step_submitting,
        JobState.SUBMITTED: _step_polling,
        JobState.PROCESSING: _step_polling,
        JobState.DOWNLOADING: _step_downloading,
        JobState.DELIVERING: _step_delivering,
    }

    # Housekeeping --------------------------------------------------------------------------------------
    def _cleanup_inputs(self, job: Job) -> None:
        """A raw upload left by a job that ended before it was normalised goes. The normalised input stays
        for the retention period, so Regenerate can reuse the exact first frame after Discord's link died."""
        if job.state not in RESTING_STATES:
            return
        for path in (job.image_path, job.last_frame_path):
            if path and path.endswith(".src"):
                with contextlib.suppress(OSError):
                    Path(path).unlink(missing_ok=True)

    async def _janitor(self) -> None:
        """Remove retained videos and input images past the retention period (undelivered ones included:
        /jobs offered them for that long)."""
        while True:
            try:
                cutoff = time.time() - self.settings.retention_hours * 3600
                kept = ((self.settings.videos_dir, "*.mp4"), (self.settings.images_dir, "*.jpg"))
                removed = 0
                for folder, pattern in kept:
                    removed += await asyncio.to_thread(media.remove_older, folder, pattern, cutoff)
                if removed:
                    log.info("removed %d file(s) past retention", removed)
            except Exception:
                log.exception("janitor failed")
            await asyncio.sleep(3600)


async def _quiet(coro: Awaitable[Job | None]) -> Job | None:
    try:
        return await coro
    except Exception:
        return None
