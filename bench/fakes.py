"""The bench's additions to the in-repo fake Novita: realistic timelines, a noisier `eta`, a task dump.

`BenchNovita` is the test suite's `FakeNovita` with two changes that only a benchmark needs:

* `eta` is reported in *unscaled* seconds (what Novita would say), rounded up like the real field, and is
  wrong by a per-task factor (log-uniform in 0.5–2: some tasks are over-, some under-estimated) on top of
  the timeline's per-poll noise. The stock fake reports `ceil(remaining wall seconds)`, which under a time
  scale of 0.1 rounds every eta up to the next 10 real-time seconds: it would flatter or hurt a poller.
* `GET /bench/tasks` returns every task's `created_at` / `finishes_at` (time.monotonic, system-wide on
  Linux, so another process can compare it with its own clock) and poll count.

`python -m bench.fakes --timelines FILE --time-scale S` serves it in its own process (so the pollers under
test get a core of their own) until its stdin closes or `--max-seconds` pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import ROOT, remove_video_scratch, track, untrack
from tests.fakes.novita import FakeNovita, FakeTask, Timeline
from tests.fakes.videos import make_video

QUEUED = "TASK_STATUS_QUEUED"
PROCESSING = "TASK_STATUS_PROCESSING"
ETA_BIAS = (0.5, 2.0)
ETA_NOISE = 0.2
# Other providers report 30 s to 9 minutes for a video: log-uniform over that range, so short and
# long jobs are equally likely per octave; 5–30 % of each job is spent queued.
COMPLETION_S = (30.0, 540.0)
CACHE_DIR = Path(tempfile.gettempdir()) / "hailuo-bench-cache"


def realistic_timeline(rng: random.Random, low: float = COMPLETION_S[0], high: float = COMPLETION_S[1],
                       **extra: Any) -> Timeline:  # fmt: skip
    total = math.exp(rng.uniform(math.log(low), math.log(high)))
    queued = total * rng.uniform(0.05, 0.3)
    return Timeline(queued_s=queued, processing_s=total - queued, eta_noise=ETA_NOISE, **extra)


def total_s(timeline: Timeline) -> float:
    return timeline.queued_s + timeline.processing_s


class BenchNovita(FakeNovita):
    def __init__(self, *, seed: int = 7, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._bias_rng = random.Random(seed + 1)
        self._bias: dict[str, float] = {}
        self.app.router.add_get("/bench/tasks", self._dump_tasks)

    def eta_bias(self, task_id: str) -> float:
        bias = self._bias.get(task_id)
        if bias is None:
            low, high = ETA_BIAS
            bias = self._bias[task_id] = math.exp(self._bias_rng.uniform(math.log(low), math.log(high)))
        return bias

    def result_json(self, task: FakeTask, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        doc = super().result_json(task, now)
        info = doc["task"]
        if info["status"] in (QUEUED, PROCESSING):
            remaining = max(0.0, task.finishes_at - now) / task.scale
            noise = task.timeline.eta_noise
            jitter = self._bias_rng.uniform(1 - noise, 1 + noise) if noise else 1.0
            eta = math.ceil(remaining * self.eta_bias(task.task_id) * jitter)
            info["eta"] = max(1, eta) if info["status"] == PROCESSING else eta
        return doc

    def rescript(self, *timelines: Timeline) -> None:
        """Replace the timelines waiting for the next submits (leftovers of an earlier phase are dropped)."""
        self._timelines.clear()
        self._timelines.extend(timelines)

    def task_table(self) -> dict[str, list[float]]:
        return {
            t.task_id: [t.created_at, t.finishes_at, t.polls, total_s(t.timeline)]
            for t in list(self.tasks.values())
        }

    async def _dump_tasks(self, request: web.Request) -> web.Response:
        return web.json_response({"now": time.monotonic(), "tasks": self.task_table()})


# A fake Novita in its own process ------------------------------------------------------------------------
class NovitaServerProcess:
    """`BenchNovita` in a child process, scripted with `timelines` (one per submit, in arrival order)."""

    def __init__(self, timelines: list[Timeline], *, time_scale: float, max_seconds: float, workdir: Path,
                 seed: int = 7) -> None:  # fmt: skip
        self.timelines = timelines
        self.time_scale = time_scale
        self.max_seconds = max_seconds
        self.workdir = workdir
        self.seed = seed
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.api_key = "bench-novita-key"

    def __enter__(self) -> NovitaServerProcess:
        spec = self.workdir / "timelines.json"
        spec.write_text(json.dumps([[t.queued_s, t.processing_s, t.eta_noise] for t in self.timelines]))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self.proc = track(subprocess.Popen(
            [sys.executable, "-m", "bench.fakes", "--timelines", str(spec), "--time-scale",
             str(self.time_scale), "--max-seconds", str(self.max_seconds), "--seed", str(self.seed),
             "--api-key", self.api_key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env,
        ))  # fmt: skip
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        if not line or not line[0].startswith(b"URL "):
            self.__exit__()
            raise RuntimeError(f"the fake Novita process did not start: {line!r}")
        self.url = line[0].decode().split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        untrack(self.proc)


def _serve(args: argparse.Namespace) -> None:
    rows = json.loads(Path(args.timelines).read_text())
    timelines = [Timeline(queued_s=q, processing_s=p, eta_noise=n) for q, p, n in rows]
    fallback = Timeline(queued_s=60, processing_s=600, eta_noise=ETA_NOISE)
    fake = BenchNovita(
        api_key=args.api_key, time_scale=args.time_scale, seed=args.seed, default_timeline=fallback
    )
    fake.script(*timelines)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watch_stdin() -> None:
            sys.stdin.buffer.read()  # returns when the parent closes the pipe or dies
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
        async with fake:
            print(f"URL {fake.base_url}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.max_seconds)

    try:
        asyncio.run(serve())
    finally:
        remove_video_scratch()


# A cached big video --------------------------------------------------------------------------------------
def big_video(target_bytes: int) -> Path:
    """A ~`target_bytes` MP4 (6 s of 1280x720 noise at a high bitrate), made once and cached across runs."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    dest = CACHE_DIR / f"noise-{target_bytes}-720p.mp4"
    if dest.exists() and dest.stat().st_size >= target_bytes * 0.95:
        return dest
    seconds = 6.0
    # x264 overshoots a capped noise stream by a few per cent; aim a little low.
    kbps = int(target_bytes * 8 / seconds / 1000 * 0.95)
    tmp = CACHE_DIR / f"noise-{target_bytes}-{os.getpid()}.tmp.mp4"
    make_video(tmp, seconds=seconds, size=(1280, 720), noise_bitrate_kbps=kbps)
    os.replace(tmp, dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve BenchNovita on 127.0.0.1 (a free port).")
    parser.add_argument("--timelines", required=True)
    parser.add_argument("--time-scale", type=float, required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-key", default="bench-novita-key")
    _serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
