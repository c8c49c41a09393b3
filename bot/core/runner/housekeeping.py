"""Housekeeping: the retention pruner for kept videos and input images."""

from __future__ import annotations

import asyncio
import time

from .. import media
from .base import RunnerBase, log


class Housekeeping(RunnerBase):
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
