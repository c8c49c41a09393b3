"""Detection delay and polls per job: the bot's poll schedule against fixed 2 s and 5 s pollers.

Every task is polled by three pollers at once, over real HTTP, through the bot's own `NovitaClient` (one
session each, with the engine's connection limits), against one fake Novita running in its own process:

* `bot`     — `bot.core.polling.PollPlan`, default settings (`poll_min_s`, `poll_max_s`, `poll_first_s`),
              driven exactly like `JobRunner._step_polling`: first poll after `poll_first_s`, then
              `next_delay(now, eta, progress)` after each answer, doubling (bounded) after a failed poll;
* `fixed 2 s`, `fixed 5 s` — a poll every 2 (5) seconds from the submit.

Time is scaled so that a 9-minute job takes 9 × 60 × `scale` seconds: the fake runs its timelines at `scale`,
and every poller's sleeps are multiplied by `scale`; the bot poller sees `eta` in unscaled seconds and is
given an unscaled clock (monotonic / scale), so it makes exactly the decisions it would make at full speed.
Delays are reported in unscaled seconds. What does not scale is the HTTP round trip (a few ms on loopback,
i.e. tens of ms unscaled at 0.1); all three pollers pay it alike, so the ratios stand.

The detection delay of a poller for a task is (time the poller has the SUCCEED answer in hand) −
(the instant the fake starts answering SUCCEED), both on the system-wide monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import Deadline, Section, mean, percentile, secs
from bench.fakes import COMPLETION_S, ETA_BIAS, ETA_NOISE, NovitaServerProcess, realistic_timeline
from bot.core.novita import GenerationRequest, NovitaClient, NovitaError, TaskResult
from bot.core.polling import PollPlan
from bot.core.settings import Settings


@dataclass
class PollingConfig:
    tasks: int = 200
    scale: float = 0.1
    arrival_window_s: float = 60.0  # unscaled: submits spread uniformly over this window
    seed: int = 11


# A fourth poller, for comparison only: PollPlan with a lower floor (a proposed default, see the docs).
VARIANT_LO = 1.0


@dataclass
class Outcome:
    polls: int = 0
    errors: int = 0
    known_at: float | None = None  # monotonic
    status: str = ""


@dataclass
class PollerRun:
    name: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    rtts: list[float] = field(default_factory=list)


def default(name: str) -> float:
    value = Settings.model_fields[name].default
    assert isinstance(value, float)
    return value


class Pollers:
    def __init__(self, scale: float, clients: list[NovitaClient], seed: int, max_wall: float) -> None:
        self.scale = scale
        self.clients = clients
        self.rng = random.Random(seed)
        self.max_wall = max_wall
        self.lo, self.hi, self.first = default("poll_min_s"), default("poll_max_s"), default("poll_first_s")
        self.runs = [PollerRun("bot (PollPlan)"), PollerRun("fixed 2 s"), PollerRun("fixed 5 s")]
        self.runs.append(PollerRun(f"PollPlan, poll_min_s={VARIANT_LO:g}"))

    def vnow(self) -> float:
        return time.monotonic() / self.scale

    async def _poll(
        self, run: PollerRun, client: NovitaClient, task_id: str, out: Outcome
    ) -> TaskResult | None:
        """One poll; None if it failed. A finished task completes `out`."""
        started = time.monotonic()
        try:
            result = await client.get_result(task_id)
        except NovitaError:
            out.errors += 1
            return None
        done = time.monotonic()
        run.rtts.append(done - started)
        out.polls += 1
        if result.finished:
            out.known_at = done
            out.status = result.status.value
        return result

    async def bot(self, task_id: str, index: int = 0, lo: float | None = None) -> None:
        """Mirrors JobRunner._step_polling's schedule (PollPlan, first delay, failure backoff)."""
        run, client, out = self.runs[index], self.clients[index], Outcome()
        run.outcomes[task_id] = out
        plan = PollPlan(lo=lo or self.lo, hi=self.hi, first=self.first)
        delay = self.first
        async with asyncio.timeout(self.max_wall):
            for _ in range(100_000):
                await asyncio.sleep(delay * self.scale)
                result = await self._poll(run, client, task_id, out)
                if result is None:
                    delay = min(self.hi, max(delay * 2, self.first))
                elif result.finished:
                    return
                else:
                    delay = plan.next_delay(
                        self.vnow(), result.eta_seconds, result.progress_percent, rng=self.rng
                    )

    async def fixed(self, index: int, interval: float, task_id: str) -> None:
        run, client, out = self.runs[index], self.clients[index], Outcome()
        run.outcomes[task_id] = out
        async with asyncio.timeout(self.max_wall):
            for _ in range(100_000):
                await asyncio.sleep(interval * self.scale)
                result = await self._poll(run, client, task_id, out)
                if result is not None and result.finished:
                    return


def median_gap(a: list[float], b: list[float], seed: int, rounds: int = 400) -> tuple[float, float, float]:
    """median(a) − median(b) and its 95 % bootstrap interval (how sure the comparison is, given n)."""
    rng = random.Random(seed)
    gaps = sorted(
        percentile(rng.choices(a, k=len(a)), 50) - percentile(rng.choices(b, k=len(b)), 50)
        for _ in range(rounds)
    )
    return percentile(a, 50) - percentile(b, 50), percentile(gaps, 2.5), percentile(gaps, 97.5)


async def _run(cfg: PollingConfig, url: str, api_key: str, deadline: Deadline) -> tuple[Pollers, dict]:
    rng = random.Random(cfg.seed)
    max_virtual = cfg.arrival_window_s + COMPLETION_S[1] * 1.5 + 60
    sessions = [
        # The engine's connector: a bounded pool per host (bot/core/engine.py).
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=100))
        for _ in range(4)
    ]
    try:
        clients = [NovitaClient(s, base_url=url, api_key=api_key, request_timeout=30) for s in sessions]
        pollers = Pollers(cfg.scale, clients, cfg.seed, max_wall=max_virtual * cfg.scale + 30)
        arrivals = sorted(rng.uniform(0, cfg.arrival_window_s) for _ in range(cfg.tasks))
        failures: list[BaseException] = []

        async def one(index: int, arrival: float) -> None:
            await asyncio.sleep(arrival * cfg.scale)
            request = GenerationRequest(prompt=f"bench polling task {index}", prompt_expansion=False)
            task_id = await clients[0].submit(request)
            results = await asyncio.gather(
                pollers.bot(task_id),
                pollers.fixed(1, 2.0, task_id),
                pollers.fixed(2, 5.0, task_id),
                pollers.bot(task_id, 3, VARIANT_LO),
                return_exceptions=True,
            )
            failures.extend(r for r in results if isinstance(r, BaseException))

        await asyncio.wait_for(
            asyncio.gather(*(one(i, a) for i, a in enumerate(arrivals))),
            deadline.left(max_virtual * cfg.scale + 60),
        )
        async with sessions[0].get(url + "/bench/tasks", timeout=aiohttp.ClientTimeout(total=30)) as resp:
            table = (await resp.json())["tasks"]
        if failures:
            raise RuntimeError(f"{len(failures)} poller(s) failed, e.g. {failures[0]!r}")
        return pollers, table
    finally:
        for session in sessions:
            await session.close()


def run(cfg: PollingConfig, deadline: Deadline) -> Section:
    section = Section("polling")
    rng = random.Random(cfg.seed)
    timelines = [realistic_timeline(rng) for _ in range(cfg.tasks)]
    max_wall = (cfg.arrival_window_s + COMPLETION_S[1] * 1.5 + 120) * cfg.scale + 60
    with (
        tempfile.TemporaryDirectory(prefix="hailuo-bench-poll-") as tmp,
        NovitaServerProcess(
            timelines, time_scale=cfg.scale, max_seconds=max_wall, workdir=Path(tmp), seed=cfg.seed
        ) as server,
    ):
        pollers, table = asyncio.run(_run(cfg, server.url, server.api_key, deadline))

    finish = {task_id: row[1] for task_id, row in table.items()}
    durations = [row[3] for row in table.values()]
    stats = {}
    delays_by: dict[str, list[float]] = {}
    for run_ in pollers.runs:
        delays = [
            (o.known_at - finish[t]) / cfg.scale
            for t, o in run_.outcomes.items()
            if o.known_at is not None and t in finish
        ]
        delays_by[run_.name] = delays
        polls = [o.polls for o in run_.outcomes.values()]
        errors = sum(o.errors for o in run_.outcomes.values())
        stats[run_.name] = {
            "p50": percentile(delays, 50), "p95": percentile(delays, 95), "max": max(delays, default=0),
            "polls_mean": mean(polls), "polls_p50": percentile(polls, 50), "n": len(delays),
            "errors": errors, "rtt_p50": percentile(run_.rtts, 50), "rtt_p99": percentile(run_.rtts, 99),
        }  # fmt: skip
    bot, f2, f5, variant = (stats[r.name] for r in pollers.runs)
    section.data = {"stats": stats, "tasks": cfg.tasks, "scale": cfg.scale}
    lo, hi, first = pollers.lo, pollers.hi, pollers.first
    bound = (
        "a poller learns of success only at its next poll: the delay is the gap between polls at the end of "
        f"a job — PollPlan's floor poll_min_s={lo:g} s (aim half-way to the eta, jitter ±10 %) — plus one "
        "Novita round trip"
    )
    section.add(
        "detection delay p50 / p95, bot poller", f"{secs(bot['p50'])} / {secs(bot['p95'])}",
        f"p50 ≤ fixed 2 s ({secs(f2['p50'])})", bot["p50"] <= f2["p50"], bound,
    )  # fmt: skip
    section.add(
        "detection delay p50 / p95, fixed 2 s", f"{secs(f2['p50'])} / {secs(f2['p95'])}",
        bound="uniform over the 2 s interval: p50 ≈ 1 s, p95 ≈ 1.9 s, plus one round trip",
    )  # fmt: skip
    section.add(
        "detection delay p50 / p95, fixed 5 s", f"{secs(f5['p50'])} / {secs(f5['p95'])}",
        bound="uniform over the 5 s interval: p50 ≈ 2.5 s, p95 ≈ 4.75 s",
    )  # fmt: skip
    section.add(
        "polls per job (mean), bot / fixed 2 s / fixed 5 s",
        f"{bot['polls_mean']:.1f} / {f2['polls_mean']:.1f} / {f5['polls_mean']:.1f}",
        f"bot < fixed 5 s ({f5['polls_mean']:.1f})", bot["polls_mean"] < f5["polls_mean"],
        f"the poll_max_s={hi:g} s cap while far from the end, then about log2(remaining / {lo:g} s) polls "
        "closing in; the fixed pollers' count is job length / interval",
    )  # fmt: skip
    gap, gap_lo, gap_hi = median_gap(
        delays_by[pollers.runs[0].name], delays_by[pollers.runs[1].name], cfg.seed
    )
    ratio_polls = bot["polls_mean"] / f5["polls_mean"] if f5["polls_mean"] else float("nan")
    ratio_delay = bot["p50"] / f2["p50"] if f2["p50"] else float("nan")
    section.notes.append(
        f"polling: {cfg.tasks} tasks, completion log-uniform {COMPLETION_S[0]:g}–{COMPLETION_S[1]:g} s "
        f"(mean {mean(durations):.0f} s), eta off by a per-task factor in {ETA_BIAS[0]}–{ETA_BIAS[1]} and "
        f"±{ETA_NOISE:.0%} per poll; time scale {cfg.scale:g} (all delays in unscaled seconds); "
        f"PollPlan(lo={lo:g}, hi={hi:g}, first={first:g}). Ratios: bot/fixed-5 polls {ratio_polls:.2f}, "
        f"bot/fixed-2 median delay {ratio_delay:.2f}; bot − fixed-2 median {gap:+.2f} s (95 % bootstrap "
        f"interval {gap_lo:+.2f}…{gap_hi:+.2f} s with {cfg.tasks} tasks). Poll round trip p50/p99 "
        f"{bot['rtt_p50'] * 1000:.1f}/{bot['rtt_p99'] * 1000:.1f} ms wall "
        f"(= {bot['rtt_p99'] / cfg.scale:.2f} s unscaled at p99); poll errors "
        f"{bot['errors']}/{f2['errors']}/{f5['errors']}."
    )
    section.notes.append(
        f"polling, for comparison (same tasks, same run): PollPlan with poll_min_s={VARIANT_LO:g} detects "
        f"in p50/p95 {secs(variant['p50'])} / {secs(variant['p95'])} with {variant['polls_mean']:.1f} polls "
        f"per job (default poll_min_s={lo:g}: {secs(bot['p50'])} / {secs(bot['p95'])}, "
        f"{bot['polls_mean']:.1f} polls)."
    )
    return section


if __name__ == "__main__":  # a quick look: python -m bench.polling
    with contextlib.suppress(KeyboardInterrupt):
        sec = run(PollingConfig(tasks=30, scale=0.05), Deadline(300, "polling"))
        for fig in sec.figures:
            print(f"{fig.name:52} {fig.measured:28} {fig.target:28} {fig.verdict}")
        print(*sec.notes, sep="\n")
