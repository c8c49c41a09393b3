"""A console reporter that also records what the runner told it, for tests to assert on."""

from __future__ import annotations

from pathlib import Path

from bot.core.models import Job, JobState
from bot.core.reporting import ConsoleReporter, Delivered, DeliveryFailed


class RecordingReporter(ConsoleReporter):
    """Records every change, delivery and ending; `fail_delivery` makes every destination refuse."""

    def __init__(self, out: Path | None = None) -> None:
        super().__init__(out)
        self.changes: list[tuple[int, JobState, float | None]] = []
        self.delivered: list[tuple[int, Path]] = []
        self.ended: list[Job] = []
        self.fail_delivery = False

    def job_changed(self, job: Job) -> None:
        self.changes.append((job.id, job.state, job.progress))
        super().job_changed(job)

    async def deliver(self, job: Job, video: Path) -> Delivered:
        if self.fail_delivery:
            raise DeliveryFailed("Nowhere to deliver the video.")
        delivered = await super().deliver(job, video)
        self.delivered.append((job.id, self.target_for(job, video)))
        return delivered

    async def job_ended(self, job: Job) -> None:
        self.ended.append(job)
        await super().job_ended(job)
