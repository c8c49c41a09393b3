"""Reusing a job's frames for Regenerate, Edit and Continue, wherever they can still be had.

The runner deletes input images when a job rests, so Regenerate and Edit use the original attachment link
while it is valid; once its signed link expired, the source message (context menu and mention jobs) is read
again for a fresh link; a Continue job's first frame is the parent video's last frame, read again from the
retained video (a few reads are cached, so the frame is usually ready by the time the modal is sent). When
none of these is possible the member is told so plainly, instead of silently starting from a different
picture.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from ..core import media
from ..core.i18n import Text, _, plural
from ..core.models import Job
from .forms import (
    ImageSource,
    link_alive,
    pick_image,
)

if TYPE_CHECKING:
    from .app import HailuoBot

log = logging.getLogger("cogs.buttons")  # these lines read as the buttons' own, as before

FRAME_WAIT_S = 2.0  # of the 3-second answer window; the frame is usually read while the modal is open
FRAME_CACHE = 16

IMAGE_EXPIRED = _(
    "The original image of video #{id} has expired, so it can't be reused. Use Continue, or /video with "
    "the image again."
)


def video_gone(job_id: int, hours: float) -> Text:
    return plural(
        "Video #{id} is no longer kept (videos are kept for {count} hour), so its last frame can't be used. "
        "Use /video to start a new one.",
        "Video #{id} is no longer kept (videos are kept for {count} hours), so its last frame can't be used. "
        "Use /video to start a new one.",
        round(hours),
        id=str(job_id),
    )


LAST_FRAME_EXPIRED = _(
    "The last frame of video #{id} is no longer kept, so it can't be reused. Use /video with both images "
    "again."
)
BAD_FRAME = _(
    "The last frame of video #{id} can't be used as a first frame. Use Regenerate or /video instead."
)
FRAME_SLOW = _("I'm still reading the last frame of video #{id}. Try again in a few seconds.")


async def file_exists(path: str | None) -> bool:
    return bool(path) and await asyncio.to_thread(Path(path or "").exists)


class FrameReuse:
    """The first and last frames of an earlier job, for a new request; one per Buttons cog."""

    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        self._frames: collections.OrderedDict[int, asyncio.Task[bytes]] = collections.OrderedDict()

    def close(self) -> None:
        for task in self._frames.values():
            task.cancel()

    async def rerun_image(self, job: Job) -> tuple[dict[str, Any], Text | None]:
        """Request fields for the same first frame as `job`, or why it can't be had (see module doc)."""
        if not (job.image_url or job.image_path):
            return {}, None  # text to video
        if job.image_path and await file_exists(job.image_path):  # the exact input, kept for the retention
            data = await asyncio.to_thread(Path(job.image_path).read_bytes)
            return {"image_bytes": data, "image_name": job.image_name}, None
        if job.image_url is None:  # a Continue job: the parent video's last frame
            parent = await self.bot.store.get_job(job.parent_job_id) if job.parent_job_id else None
            if parent is None:
                return {}, IMAGE_EXPIRED.with_params(id=str(job.id))
            frame, refusal = await self.last_frame(parent)
            return {"image_bytes": frame, "image_name": job.image_name}, refusal
        if link_alive(job.image_url):
            return {"image_url": job.image_url, "image_name": job.image_name}, None
        source = await self.refetch_image(job)
        if source is None:
            return {}, IMAGE_EXPIRED.with_params(id=str(job.id))
        return {"image_url": source.url, "image_name": source.filename}, None

    async def rerun_last_frame(self, job: Job) -> tuple[dict[str, Any], Text | None]:
        """Request fields for the same last frame as `job` (none when it had none), or why not."""
        if not job.has_last_frame:
            return {}, None
        if job.last_frame_path and await file_exists(job.last_frame_path):
            data = await asyncio.to_thread(Path(job.last_frame_path).read_bytes)
            return {"last_frame_bytes": data, "last_frame_name": job.last_frame_name}, None
        if job.last_frame_url and link_alive(job.last_frame_url):
            return {"last_frame_url": job.last_frame_url, "last_frame_name": job.last_frame_name}, None
        return {}, LAST_FRAME_EXPIRED.with_params(id=str(job.id))

    async def refetch_image(self, job: Job) -> ImageSource | None:
        """A fresh signed link from the message the image came from (or the message it replied to)."""
        if not job.source_message_id or not job.channel_id:
            return None
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        with contextlib.suppress(discord.HTTPException):
            message = await channel.fetch_message(job.source_message_id)
            source, _refusal = pick_image(message, self.bot.settings.image_origins)
            reference = message.reference
            if source is None and reference is not None and reference.message_id is not None:
                source, _refusal = pick_image(
                    await channel.fetch_message(reference.message_id), self.bot.settings.image_origins
                )
            return source
        return None

    # The last frame (Continue) ---------------------------------------------------------------------
    def frame_task(self, job: Job) -> asyncio.Task[bytes]:
        task = self._frames.get(job.id)
        if task is None or (task.done() and not task.cancelled() and isinstance(task.exception(), OSError)):
            task = asyncio.create_task(_read_frame(Path(job.video_path or "")), name=f"frame-{job.id}")
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
            self._frames[job.id] = task
        self._frames.move_to_end(job.id)
        while len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)  # a running read finishes on its own; someone may await it
        return task

    async def last_frame(self, job: Job) -> tuple[bytes | None, Text | None]:
        if not await file_exists(job.video_path):
            return None, video_gone(job.id, self.bot.settings.retention_hours)
        try:
            return await asyncio.wait_for(asyncio.shield(self.frame_task(job)), FRAME_WAIT_S), None
        except TimeoutError:
            return None, FRAME_SLOW.with_params(id=str(job.id))
        except media.MediaError as exc:
            log.warning("job=%s last frame unusable: %s", job.id, exc)
            return None, BAD_FRAME.with_params(id=str(job.id))


async def _read_frame(video: Path) -> bytes:
    """The video's last frame, checked to be usable as a first frame (the real check is the runner's)."""
    frame = await media.extract_last_frame(video)
    await media.normalise_image(frame)
    return frame
