"""Bench only: an event-loop lag probe inside the real bot process (`python -m bot`).

The bench puts this directory first on the bot's PYTHONPATH and sets HAILUO_BENCH_LAG_FILE. `asyncio.run` is
then wrapped so that, next to the bot's own main coroutine, one task sleeps 10 ms at a time and records by how
much each sleep overshot — the time the loop was busy with something else, which is what every interaction,
poll and card edit waits behind. Samples (`monotonic lag_ms` lines) are appended to the file once a second.
Without the variable nothing is installed.

Experiment knob: HAILUO_BENCH_FFMPEG_NICE=N lowers the CPU priority of every child process the bot starts
through asyncio (ffmpeg) to nice N right after it starts, to measure that proposed change without editing
bot/ (`python -m bench --only memory --ffmpeg-nice 10`).

Either way this chains to the next sitecustomize on sys.path (the fake-Discord patch), and a guard stops that
one from chaining back here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

_GUARD = "_hailuo_bench_probe"


def _install(path: str, interval: float) -> None:
    import asyncio
    import time

    original_run = asyncio.run

    async def probe() -> None:
        lines: list[str] = []
        flushed = time.monotonic()
        with open(path, "a") as out:
            try:
                while True:
                    start = time.monotonic()
                    await asyncio.sleep(interval)
                    now = time.monotonic()
                    lines.append(f"{now:.4f} {(now - start - interval) * 1000:.2f}\n")
                    if now - flushed >= 1.0:
                        out.write("".join(lines))
                        out.flush()
                        lines.clear()
                        flushed = now
            finally:
                out.write("".join(lines))

    def run(main, **kwargs):
        async def with_probe():
            task = asyncio.get_running_loop().create_task(probe(), name="bench-lag-probe")
            try:
                return await main
            finally:
                task.cancel()

        return original_run(with_probe(), **kwargs)

    asyncio.run = run


def _nice_children(level: int) -> None:
    import asyncio

    original = asyncio.create_subprocess_exec

    async def create_subprocess_exec(*args, **kwargs):
        proc = await original(*args, **kwargs)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, level)
        return proc

    asyncio.create_subprocess_exec = create_subprocess_exec


def _chain_next() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        directory = os.path.abspath(entry or os.getcwd())
        candidate = os.path.join(directory, "sitecustomize.py")
        if directory == here or not os.path.isfile(candidate):
            continue
        spec = importlib.util.spec_from_file_location("_bench_chained_sitecustomize", candidate)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                print(f"bench sitecustomize chain: {candidate}: {exc!r}", file=sys.stderr)
        return


if not getattr(sys, _GUARD, False):
    setattr(sys, _GUARD, True)
    _file = os.environ.get("HAILUO_BENCH_LAG_FILE")
    if _file:
        _install(_file, float(os.environ.get("HAILUO_BENCH_LAG_INTERVAL_S", "0.01")))
    if os.environ.get("HAILUO_BENCH_FFMPEG_NICE"):
        _nice_children(int(os.environ["HAILUO_BENCH_FFMPEG_NICE"]))
    _chain_next()
