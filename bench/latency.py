"""The real bot process under load: first response, success → upload start, and 1,000 jobs in flight.

One bot process (`python -m bot`, production defaults for polling and card edits) runs against the fake
Discord and the bench's fake Novita, both on loopback in this process's threads. Caps are lifted by settings
(unlimited credits, per-member / per-server / in-flight caps of 100,000, 10,000 submits a minute) so that
jobs really pile up at Novita.

For each level N (0, 100, 500, 1,000): top up to N jobs in flight with /video commands from 50 members
(50 a second) and wait until every one of them is submitted; then send a batch of fresh /video commands at
a steady pace (once a second, jobs that finished meanwhile are replaced, unmeasured, so that N stay in
flight) and read from the fake Discord the time from dispatching each INTERACTION_CREATE to receiving its
initial callback (`Interaction.response_time`). Jobs draw their Novita timelines from the realistic
distribution (30 s – 9 min), so they finish, download and deliver while the next levels are measured; the
level-0 batch uses 3-second jobs so that it stays near zero in flight. "In flight" is read from the bot's
own database (jobs in an active state).

Success → upload start, for every job that finished during the run (jobs of at least 30 s): the fake
Discord's arrival time of the upload request minus the instant the fake Novita starts answering SUCCEED;
split into detection (the job's `finished_at` in the database, i.e. the poll that saw it) and the rest
(download, checks, building the result).

At the top level the bot's CPU time (psutil), RSS and its kernel high-water mark (VmHWM) and the event-loop
lag seen by the probe inside the bot process (bench/probe) are taken over the steady window and the batch.
"""

from __future__ import annotations

import contextlib
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    Database,
    Deadline,
    ProcWatch,
    Section,
    mbytes,
    ms,
    peak_rss,
    percentile,
    secs,
    wait_until,
)
from bench.fakes import COMPLETION_S, BenchNovita, realistic_timeline, total_s
from bench.world import BenchWorld, bench_world, lag_summary
from bot.core.models import ACTIVE_STATES, AT_NOVITA, JobState
from tests.fakes.fake_discord import Interaction
from tests.fakes.novita import Timeline

UNCAPPED = {
    "DEFAULT_QUOTA_CREDITS": "-1",
    "USER_MAX_CONCURRENT": "100000",
    "GUILD_MAX_CONCURRENT": "100000",
    "NOVITA_MAX_IN_FLIGHT": "100000",
    "NOVITA_RATE_PER_MINUTE": "10000",
}
SHORT = Timeline(queued_s=1.0, processing_s=2.0, eta_noise=0.2)
UPLOAD_NAME = re.compile(r"hailuo-(\d+)\.mp4")
NOT_YET_SUBMITTED = tuple(s.value for s in (JobState.ACCEPTED, JobState.QUEUED, JobState.SUBMITTING))


@dataclass
class LoadConfig:
    levels: tuple[int, ...] = (0, 100, 500, 1000)
    batch: int = 80
    pace: float = 4.0  # measured /video per second
    ramp_pace: float = 50.0  # top-up /video per second
    members: int = 50
    steady_s: float = 20.0  # at the top level, before its batch: only the replacements of finished jobs
    completion_s: tuple[float, float] = COMPLETION_S  # --quick narrows it so that jobs finish in time
    min_completions: int = 100  # success → upload samples wanted; wait for them up to drain_max_s
    drain_max_s: float = 60.0
    seed: int = 5


@dataclass
class Level:
    target: int
    times: list[float] = field(default_factory=list)  # response times (s)
    unanswered: int = 0
    refused: int = 0
    in_flight: list[int] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)


class Driver:
    """Sends /video like 50 members would, and reads what the fakes and the bot's database say."""

    def __init__(self, world: BenchWorld, cfg: LoadConfig) -> None:
        self.world = world
        self.discord = world.discord
        self.novita: BenchNovita = world.novita  # type: ignore[assignment]
        self.members = [self.discord.add_member(None, f"member{i:02d}").user for i in range(cfg.members)]
        self.sent = 0
        self.uploads: dict[int, float] = {}  # job id -> arrival (monotonic) of its first upload request
        self._scan_from = 0
        self._db: Database | None = None

    def send(self) -> Interaction:
        user = self.members[self.sent % len(self.members)]
        self.sent += 1
        prompt = f"bench job {self.sent}: a lighthouse in the fog, waves crashing"
        return self.discord.slash("video", {"prompt": prompt}, user=user)

    def send_paced(self, count: int, pace: float, deadline: Deadline) -> list[Interaction]:
        out = []
        start = time.monotonic()
        for i in range(count):
            deadline.check()
            delay = start + i / pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            out.append(self.send())
        return out

    # The bots' database, read-only (SQLite file or PostgreSQL) -------------------------------------------
    def db(self) -> Database:
        if self._db is None:
            self._db = self.world.database()
        return self._db

    def count(self, states: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(states))
        return int(self.db().value(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", states))  # noqa: S608

    def in_flight(self) -> int:
        return self.count(tuple(s.value for s in ACTIVE_STATES))

    def pending_submit(self) -> int:
        return self.count(NOT_YET_SUBMITTED)

    def jobs(self) -> list[tuple[Any, ...]]:
        """(id, task_id, finished_at) of every job that reached Novita."""
        return self.db().rows("SELECT id, task_id, finished_at FROM jobs WHERE task_id IS NOT NULL")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    # Uploads seen by the fake Discord ----------------------------------------------------------------------
    def scan_uploads(self) -> None:
        requests = self.discord.world.requests
        end = len(requests)
        first_open = None
        for index in range(self._scan_from, end):
            record = requests[index]
            if record.status == 0 and first_open is None:
                first_open = index  # still arriving: its files may not all be read yet
            for info in record.files:
                match = UPLOAD_NAME.fullmatch(info.filename)
                if match:
                    self.uploads.setdefault(int(match.group(1)), record.at)
        self._scan_from = first_open if first_open is not None else end


def _wait_submitted(drv: Driver, deadline: Deadline) -> None:
    wait_until(lambda: drv.pending_submit() == 0, deadline.left(120), "every job to be submitted")


def _collect(interactions: list[Interaction], level: Level, deadline: Deadline) -> None:
    """Response times of a batch; each interaction gets Discord's 3 s window (and a little more)."""
    for inter in interactions:
        with contextlib.suppress(TimeoutError):
            wait_until(lambda i=inter: i.response is not None, min(4.0, deadline.left()), "a response", 0.02)
        if inter.response is None:
            level.unanswered += 1
        elif inter.response.ephemeral:
            level.refused += 1
        else:
            assert inter.response_time is not None
            level.times.append(inter.response_time)


def top_up(drv: Driver, target: int, cfg: LoadConfig, rng: random.Random, deadline: Deadline) -> int:
    """/video at `cfg.ramp_pace` until `target` jobs are in flight, then wait until all are submitted.
    Returns how many of these commands got no first response within Discord's window (and a little more)."""
    missing = max(0, target - drv.in_flight())
    if not missing:
        return 0
    drv.novita.rescript(*(realistic_timeline(rng, *cfg.completion_s) for _ in range(missing)))
    sent = drv.send_paced(missing, cfg.ramp_pace, deadline)
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: all(i.response is not None for i in sent), deadline.left(4), "the top-up responses"
        )
    _wait_submitted(drv, deadline)
    return sum(1 for i in sent if i.response is None)


def hold(drv: Driver, target: int, cfg: LoadConfig, rng: random.Random) -> int:
    """Replace the jobs that finished since the last look, so the level stays at `target` (not measured).
    Returns the number in flight before topping up."""
    now = drv.in_flight()
    missing = target - now
    if missing > 0:
        drv.novita.script(*(realistic_timeline(rng, *cfg.completion_s) for _ in range(missing)))
        for _ in range(missing):
            drv.send()
    return now


def hold_for(drv: Driver, target: int, seconds: float, cfg: LoadConfig, rng: random.Random) -> list[int]:
    """Hold `target` in flight for `seconds`, replacing finished jobs once a second; the counts seen."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(hold(drv, target, cfg, rng))
        time.sleep(1.0)
    return seen


def warm_up(drv: Driver, deadline: Deadline) -> None:
    """Take the whole path once (first writes, first uploads, connection pools) with three short jobs."""
    drv.novita.rescript(SHORT, SHORT, SHORT)
    warm = [drv.send() for _ in range(3)]
    for inter in warm:
        wait_until(lambda i=inter: i.response is not None, 10, "the warm-up responses")
    wait_until(lambda: drv.in_flight() == 0, deadline.left(60), "the warm-up jobs to be delivered")


def batch(drv: Driver, level: Level, cfg: LoadConfig, rng: random.Random, deadline: Deadline) -> None:
    timelines = [
        SHORT if level.target == 0 else realistic_timeline(rng, *cfg.completion_s) for _ in range(cfg.batch)
    ]
    drv.novita.rescript(*timelines)
    interactions: list[Interaction] = []
    start = time.monotonic()
    for i in range(cfg.batch):
        deadline.check()
        delay = start + i / cfg.pace - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        interactions.append(drv.send())
        if i % max(1, int(cfg.pace)) == 0:  # about once a second
            level.in_flight.append(hold(drv, level.target, cfg, rng) if level.target else drv.in_flight())
    _collect(interactions, level, deadline)
    level.in_flight.append(drv.in_flight())


def _success_to_upload(drv: Driver) -> tuple[list[float], list[float], list[float], int]:
    """Per finished job of at least 30 s: success → upload start, success → detected, detected → upload
    start; and how many short jobs were left out."""
    offset = time.time() - time.monotonic()
    tasks = {t.task_id: t for t in list(drv.novita.tasks.values())}
    to_upload, to_detect, rest, skipped = [], [], [], 0
    for job_id, task_id, finished_at in drv.jobs():
        task = tasks.get(task_id)
        uploaded = drv.uploads.get(job_id)
        if task is None or uploaded is None:
            continue
        if total_s(task.timeline) < 30:
            skipped += 1
            continue
        to_upload.append(uploaded - task.finishes_at)
        if finished_at:
            detected = datetime.fromisoformat(finished_at).timestamp() - offset
            to_detect.append(detected - task.finishes_at)
            rest.append(uploaded - detected)
    return to_upload, to_detect, rest, skipped


def log_problems(text: str) -> dict[str, int]:
    """Failed jobs, errors and tracebacks in a bot process's log."""
    return {
        "failed jobs": len(re.findall(r" failed: ", text)),
        "errors": len(re.findall(r"^\S+ \S+ ERROR ", text, re.MULTILINE)),
        "tracebacks": text.count("Traceback (most recent call last)"),
    }


def run(cfg: LoadConfig, deadline: Deadline) -> Section:
    section = Section("load")
    rng = random.Random(cfg.seed)
    novita = BenchNovita(seed=cfg.seed, default_timeline=realistic_timeline(rng, *cfg.completion_s))
    levels = [Level(n) for n in cfg.levels]
    top: dict[str, Any] = {}
    late = 0  # top-up commands left unanswered
    with (
        tempfile.TemporaryDirectory(prefix="hailuo-bench-load-") as tmp,
        bench_world(Path(tmp), novita, env=UNCAPPED) as world,
    ):
        drv = Driver(world, cfg)
        try:
            with ProcWatch(world.pid, interval=0.25) as watch:
                warm_up(drv, deadline)
                for level in levels:
                    deadline.check()
                    late += top_up(drv, level.target, cfg, rng, deadline)
                    is_top = level is levels[-1]
                    t0 = time.monotonic()
                    cpu0 = watch.cpu_seconds()
                    if is_top:
                        top["in_flight"] = hold_for(drv, level.target, cfg.steady_s, cfg, rng)
                    else:
                        time.sleep(2.0)  # let the top-up's first card edits pass
                    batch(drv, level, cfg, rng, deadline)
                    t1 = time.monotonic()
                    level.lag = world.lag_samples(t0, t1)
                    if is_top:
                        top.update(
                            window=t1 - t0, cpu=watch.cpu_seconds() - cpu0, lag=level.lag,
                            rss_max=watch.max_rss(t0, t1), hwm=peak_rss(world.pid) or 0,
                            in_flight=top.get("in_flight", []) + level.in_flight,
                        )  # fmt: skip
                    if level.target == 0:  # the short jobs finish before the next level
                        with contextlib.suppress(TimeoutError):
                            wait_until(lambda: drv.in_flight() == 0, deadline.left(30), "level 0 to drain")
                drain_end = time.monotonic() + min(cfg.drain_max_s, deadline.left())
                while True:
                    drv.scan_uploads()
                    to_upload, to_detect, rest, skipped = _success_to_upload(drv)
                    if len(to_upload) >= cfg.min_completions or time.monotonic() >= drain_end:
                        break
                    time.sleep(1.0)
                problems = log_problems(world.bot.log())
                at_novita = drv.count(tuple(s.value for s in AT_NOVITA))
        finally:
            drv.close()

    # Figures ------------------------------------------------------------------------------------------------
    first_bound = (
        "one gateway event in and one HTTP callback out on loopback, plus the bot's own work in between "
        "(two SQLite transactions on the store's single thread: server rules, admit); on real Discord add "
        "its round trips (tens of ms each way)"
    )
    for level in levels:
        p50, p99 = percentile(level.times, 50), percentile(level.times, 99)
        flight = f"{min(level.in_flight, default=0)}–{max(level.in_flight, default=0)}"
        target, ok = "—", None
        if level.target == 500:
            target, ok = "p99 < 250 ms", p99 < 0.250 and not level.unanswered
        section.add(
            f"first response p50 / p99, {level.target:,} in flight", f"{ms(p50)} / {ms(p99)}", target, ok,
            first_bound if level.target == 500 else "",
        )  # fmt: skip
        section.notes.append(
            f"first response at {level.target:,}: n={len(level.times)}, in flight during the batch {flight}, "
            f"max {ms(max(level.times, default=float('nan')))}, unanswered {level.unanswered}, refused "
            f"{level.refused}, loop lag p99 {ms(percentile(level.lag, 99))}"
        )
    p50_up = percentile(to_upload, 50)
    section.add(
        "success → upload start, median (p95)", f"{secs(p50_up)} ({secs(percentile(to_upload, 95))})",
        "median < 2 s", p50_up < 2.0,
        "detection (the next poll: half of POLL_MIN_S on average) + video download + "
        "result card (quota query) on loopback; on real services add Novita's CDN download of a ~5–15 MB "
        "video and Discord's upload",
    )  # fmt: skip
    section.add(
        "  of which detection (success → bot knows), median",
        secs(percentile(to_detect, 50)),
        bound="the poll schedule (see the polling figures)",
    )
    section.notes.append(
        f"success → upload: n={len(to_upload)} jobs of ≥ 30 s finished while 0–{cfg.levels[-1]:,} were in "
        f"flight ({skipped} short warm-up/level-0 jobs left out); max "
        f"{secs(max(to_upload, default=float('nan')))}; detected → upload start p50/p95 "
        f"{ms(percentile(rest, 50))} / {ms(percentile(rest, 95))} (download, checks, result card)"
    )
    top_level = levels[-1]
    lag50, lag99, lagmax = lag_summary(top.get("lag", []))
    flight = top.get("in_flight", [0])
    label = f"{top_level.target:,} in flight"
    section.add(
        f"event-loop lag p99 (max), {label}", f"{ms(lag99)} ({ms(lagmax)})", "p99 < 50 ms", lag99 < 0.050,
        "the longest synchronous stretch in the bot's loop: parsing a gateway event, building an embed, "
        "JSON of a poll answer; SQLite and file I/O run in threads",
    )  # fmt: skip
    cpu, window = top.get("cpu", float("nan")), top.get("window", float("nan"))
    section.add(
        f"CPU seconds, {label}", f"{cpu:.1f} s in {window:.0f} s ({cpu / window:.0%} of a core)",
        bound="per job: one poll (HTTP + JSON + one SQLite write) and one card edit per poll_max_s (30 s) "
        "while far from the end, more often near it; plus deliveries of finishing jobs",
    )  # fmt: skip
    rss, hwm = top.get("rss_max", 0), top.get("hwm", 0)
    section.add(
        f"RSS, {label} (peak since start)", f"{mbytes(rss)} ({mbytes(hwm)})", "< 200 MB",
        max(rss, hwm) < 200 * MB,
        "Python + discord.py + aiohttp baseline (~60–70 MB) plus a few kB per job (its task, Job rows, "
        "the reporter's per-job state, discord.py's message cache of 200)",
    )  # fmt: skip
    section.notes.append(
        f"{label}: measured over {window:.0f} s ({cfg.steady_s:g} s holding the level, then the batch); "
        f"in flight {min(flight)}–{max(flight)}; at the end {at_novita} jobs were at Novita; loop lag p50 "
        f"{ms(lag50)}; bot log: {problems}" + (f"; {late} top-up commands went unanswered" if late else "")
    )
    section.data = {
        "levels": {lv.target: {"times": lv.times, "in_flight": lv.in_flight} for lv in levels},
        "success_to_upload": to_upload, "success_to_detect": to_detect,
        "top": {k: v for k, v in top.items() if k != "lag"}, "problems": problems,
    }  # fmt: skip
    return section


if __name__ == "__main__":  # a quick look: python -m bench.latency
    sec = run(LoadConfig(levels=(0, 20, 60), batch=12, steady_s=5), Deadline(400, "load"))
    for fig in sec.figures:
        print(f"{fig.name:52} {fig.measured:32} {fig.target:16} {fig.verdict}")
    print(*sec.notes, sep="\n")
