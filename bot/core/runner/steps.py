"""The per-state steps of one job: prepare the frames (accepted), wait for a turn and submit (queued),
poll (submitted/processing), download, deliver, and the restart rule for `submitting`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from .. import media, metrics, redaction
from ..models import ChargeState, Job, JobState, utcnow
from ..novita import (
    GenerationRequest,
    NovitaConnectionError,
    NovitaError,
    NovitaNoBalance,
    NovitaRateLimited,
    TaskResult,
    TaskStatus,
)
from ..polling import PollPlan
from ..reporting import DeliveryFailed, job_log
from .base import MAX_PREPARE_ATTEMPTS, REFUNDED
from .pacing import SubmitPacing


class JobSteps(SubmitPacing):
    # accepted -> queued: fetch and normalise the frames so Novita never has to fetch Discord's links.
    async def _step_accepted(self, job: Job) -> None:
        update: dict[str, Any] = {}
        frames = [
            (field, url, raw, self.settings.images_dir / name, label)
            for field, url, raw, name, label in (
                ("image_path", job.image_url, job.image_path, f"{job.id}.jpg", ""),
                (
                    "last_frame_path",
                    job.last_frame_url,
                    job.last_frame_path,
                    f"{job.id}-last.jpg",
                    "Last frame: ",
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
                    f"This image stopped the bot each time it was opened, so it can't be used. {REFUNDED} "
                    "Try a smaller image.",
                    f"image preparation began {job.prepare_attempts} times without finishing",
                )
                return
            job = await self._update_job(job.id, prepare_attempts=job.prepare_attempts + 1)
        for _field, url, raw, dest, label in todo:
            try:
                await self._prepare_frame(url, raw, dest)
            except media.MediaError as exc:
                await self._fail(job, f"{label}{exc.user_message} {REFUNDED}", str(exc))
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
            raise media.ImageRejected("The image for this job was lost before it could be used.")
        image = await media.normalise_image(data)
        await asyncio.to_thread(dest.write_bytes, image.jpeg)
        if raw is not None:
            await asyncio.to_thread(raw.unlink, missing_ok=True)

    # queued -> submitting -> submitted
    async def _step_queued(self, job: Job) -> None:
        job = await self._await_turn(job)
        await self._submit(job)

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

    def _unanswered(self, exc: NovitaError) -> dict[str, Any]:
        """A submit given up without an answer (a timeout, a connection lost after sending) may still be
        taken by Novita after we stopped waiting: it counts against the minute for one request timeout
        more."""
        if exc.status is not None:
            return {}
        return {"submit_seen_until": utcnow() + timedelta(seconds=self.settings.novita_request_timeout_s)}

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
        except (NovitaRateLimited, NovitaConnectionError) as exc:
            provably_unsent = isinstance(exc, NovitaRateLimited) or not exc.reached
            if provably_unsent and not exc.maybe_created:
                self._submit_failures[job.id] += 1
                if self._submit_failures[job.id] <= 5:
                    pause = getattr(exc, "retry_after", None) or min(
                        60.0, 5.0 * self._submit_failures[job.id]
                    )
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
            await self._fail(
                job,
                f"{exc.user_message} {REFUNDED}",
                f"{type(exc).__name__}: {exc.detail}",
                **self._unanswered(exc),
            )
            return
        except NovitaError as exc:
            if isinstance(exc, NovitaNoBalance):
                await self.pause_for_balance()
            if exc.maybe_created:
                msg = (
                    "We lost contact with the video service while sending your request, so we can't tell "
                    f"whether it started. {REFUNDED} Try again in a minute."
                )
            else:
                msg = f"{exc.user_message} {REFUNDED}"
            reason = f" {exc.reason}" if exc.reason else ""
            await self._fail(
                job,
                msg,
                f"{type(exc).__name__} status={exc.status}{reason} {exc.detail}",
                **self._unanswered(exc),
            )
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
                    f"The video took longer than {minutes:g} minutes, so we stopped waiting. {REFUNDED}",
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
                        f"The video service finished but sent no video. {REFUNDED}",
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
                reason = result.reason.strip() or "no reason given"
                await self._fail(
                    job,
                    f"The video service couldn't make this video: “{reason}”. {REFUNDED}",
                    f"{result.raw_status}: {reason}",
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
            await self._fail(job, f"We couldn't fetch the finished video. {REFUNDED}", exc.detail)
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
        await self._fail(job, f"We couldn't download the finished video. {REFUNDED}", last_error)

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
                error="The video file was lost before it could be posted.",
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
                error=exc.user_message,
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
            "The bot restarted while sending your request, so we can't tell whether it started. "
            f"{REFUNDED} Please try again.",
            "interrupted between submit and storing the task id; not re-submitted",
        )
