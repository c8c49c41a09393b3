"""How the runner reports a job to the outside world: the `Reporter` protocol, what a delivery returns,
and the console reporter that `python -m bot generate` and the tests use.

The Discord implementation is `DiscordReporter` in `bot/discord_side/delivery.py`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import UserFacingError
from .i18n import without
from .models import DeliveryRoute, Job, JobState

log = logging.getLogger("bot.jobs")  # a job's lines read as the runner's, wherever they are written


class JobLog(logging.LoggerAdapter):
    """Prefix every line with `job=<id>` so one job can be followed end to end with grep."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"job={self.extra['job_id']} {msg}", kwargs  # type: ignore[index]  # job_log always sets extra


def job_log(job_id: int) -> JobLog:
    return JobLog(log, {"job_id": job_id})


@dataclass(frozen=True)
class Delivered:
    via: DeliveryRoute
    channel_id: int | None = None
    message_id: int | None = None
    reencoded: bool = False


class DeliveryFailed(UserFacingError):
    """No destination accepted the video; the job becomes `undelivered` and the file is kept."""


class Reporter(Protocol):
    """How the runner tells the outside world about a job. Implementations must not block for long:
    `job_changed` is called on every visible change and should schedule (and throttle) its own work."""

    def job_changed(self, job: Job) -> None: ...

    async def deliver(self, job: Job, video: Path) -> Delivered: ...

    async def job_ended(self, job: Job) -> None: ...


class ConsoleReporter:
    """Delivery to a file or folder (`out`), progress to `echo`: for `python -m bot generate` and tests."""

    def __init__(self, out: Path | None = None, echo: Callable[[str], None] | None = None) -> None:
        self.out = out
        self.echo = echo or (lambda _line: None)

    def job_changed(self, job: Job) -> None:
        extra = (
            f" {job.progress:.0f}%" if job.progress is not None and job.state == JobState.PROCESSING else ""
        )
        self.echo(f"job {job.id}: {job.state}{extra}")

    async def deliver(self, job: Job, video: Path) -> Delivered:
        target = self.target_for(job, video)
        if target != video:
            await asyncio.to_thread(_copy, video, target)
        self.echo(f"job {job.id}: video saved to {target}")
        return Delivered(via=DeliveryRoute.CONSOLE)

    def target_for(self, job: Job, video: Path) -> Path:
        """Where the video is saved: `out` itself when it names an .mp4, else a file in that folder."""
        if self.out is None:
            return video
        return self.out if self.out.suffix.lower() == ".mp4" else self.out / f"hailuo-{job.id}.mp4"

    async def job_ended(self, job: Job) -> None:
        self.echo(f"job {job.id}: {job.state}")  # the caller says why, once (see `cli_error`)


def cli_error(job: Job) -> str:
    """Why a job did not deliver, for the operator at the command line: in English, and without the refund
    sentence (the operator's own jobs spend no member's credits)."""
    from .jobs import REFUNDED  # the runner imports this module

    error = job.error_text
    return str(without(error, REFUNDED)) if error is not None else f"The job ended as {job.state}."


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
