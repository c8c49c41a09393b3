"""Removing files and folders safely, from a worker thread, even while the caller is being cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path


def remove_paths(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


async def cleanup_in_thread(fn: Callable[..., object], *args: object) -> None:
    """Run a cleanup function in a thread; it runs to completion even if we are cancelled meanwhile."""
    with contextlib.suppress(Exception):
        await asyncio.shield(asyncio.to_thread(fn, *args))


def remove_older(folder: Path, pattern: str, cutoff: float) -> int:
    """Remove the files in `folder` matching `pattern` last changed before `cutoff` (a time.time() value);
    how many went. Run it in a worker thread."""
    removed = 0
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
