"""PostgreSQL with several processes: first response and memory at 1,000 jobs in flight across a gateway and a
worker, takeover after a SIGKILL, and admissions per second with 1, 2 and 4 processes.

One throwaway PostgreSQL server (`tests/support/postgres.py`: initdb + pg_ctl on 127.0.0.1, fsync off) serves
the whole section; every measurement gets a database of its own.

1. Load: `python -m bot` (gateway and job runner) and `python -m bot worker` (job runner only) on one
   database, against the fake Discord and the bench's fake Novita, caps lifted as in bench/latency.py. Jobs
   are born unleased and whichever process claims them first drives them. The bench tops up to N jobs in
   flight, holds that level (replacing finished jobs once a second), then sends a paced batch of /video and
   reads each first-response time from the fake Discord, with bench/latency.py's driver. RSS of both
   processes (psutil every 0.25 s, and VmHWM) over the steady window and the batch; the split of the work by
   lease owner and by `claimed` events.
2. Takeover: two job-runner processes (`tests/support/runner_process.py`) with JOB_LEASE_S=5 on a fresh
   database; one job in `processing` at the fake Novita; the process holding its lease is SIGKILLed, and the
   takeover time is the other process's `claimed` event (its own clock, ms) minus the instant of the kill.
3. Store throughput: `bench/admit_process.py` processes run concurrent `bot.quota.admit` loops for a fixed
   time on one database (1, 2 and 4 processes on PostgreSQL, 1 on a SQLite file), members spread over
   several servers; afterwards the database is checked against allowances computed here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    MB,
    ROOT,
    Database,
    Deadline,
    ProcWatch,
    Section,
    add_cleanup,
    mbytes,
    ms,
    peak_rss,
    percentile,
    remove_cleanup,
    secs,
    track,
    untrack,
    wait_until,
)
from bench.fakes import BenchNovita, realistic_timeline
from bench.latency import UNCAPPED, Driver, Level, LoadConfig, batch, hold_for, log_problems, top_up, warm_up
from bench.quota import ROLE, mixed_policy
from bench.world import bench_world, lag_summary, read_lag
from bot.core.models import ACTIVE_STATES
from tests.fakes.novita import FakeNovita, Timeline
from tests.support.postgres import PostgresServer, running_postgres

ACTIVE = tuple(s.value for s in ACTIVE_STATES)
RUNNER = [sys.executable, "-m", "tests.support.runner_process"]
ADMITTER = [sys.executable, "-m", "bench.admit_process"]


@dataclass
class PostgresConfig:
    in_flight: int = 1000
    batch: int = 80  # measured /video, at `pace` a second
    pace: float = 4.0
    ramp_pace: float = 20.0  # top-up /video a second, all in one server (see docs/performance.md)
    steady_s: float = 20.0  # holding the level before the batch
    completion_s: tuple[float, float] = (120.0, 540.0)  # the long part of the realistic range: they stay
    lease_s: float = 5.0
    takeovers: int = 5
    admit_seconds: float = 8.0
    admit_processes: tuple[int, ...] = (1, 2, 4)
    admit_loops: int = 8  # concurrent admit loops per process
    servers: int = 8
    members_per_server: int = 10
    default_credits: int = 20
    budget_usd: float = 30.0
    seed: int = 11


def new_database(server: PostgresServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(name)


def _pid_of(owner: object) -> int | None:
    """The pid in a lease owner / claim detail, `host:pid:nonce`."""
    parts = str(owner).split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def _when(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _part(deadline: Deadline, seconds: float, what: str) -> Deadline:
    """A budget for one part of the section, never past the section's own."""
    return Deadline(min(seconds, deadline.left()), what)


# 1. Two processes under load -------------------------------------------------------------------------------
def _load(server: PostgresServer, cfg: PostgresConfig, deadline: Deadline) -> dict[str, Any]:
    url = new_database(server, "bench_load")
    load = LoadConfig(levels=(cfg.in_flight,), batch=cfg.batch, pace=cfg.pace, ramp_pace=cfg.ramp_pace,
                      steady_s=cfg.steady_s, completion_s=cfg.completion_s, seed=cfg.seed)  # fmt: skip
    rng = random.Random(cfg.seed)
    novita = BenchNovita(seed=cfg.seed, default_timeline=realistic_timeline(rng, *cfg.completion_s))
    level = Level(cfg.in_flight)
    out: dict[str, Any] = {"level": level}
    with (
        tempfile.TemporaryDirectory(prefix="hailuo-bench-pg-load-") as tmp,
        bench_world(Path(tmp), novita, env={**UNCAPPED, "DATABASE_URL": url}) as world,
    ):
        worker = world.start_worker("worker")
        pids = {"gateway": world.pid, "worker": worker.pid}
        drv = Driver(world, load)
        try:
            with ProcWatch(world.pid, interval=0.25) as gw, ProcWatch(worker.pid, interval=0.25) as wk:
                warm_up(drv, deadline)
                ramp0, out["top_up_sent"] = time.monotonic(), cfg.in_flight - drv.in_flight()
                out["top_up_late"] = top_up(drv, cfg.in_flight, load, rng, deadline)
                out["top_up_s"] = time.monotonic() - ramp0
                t0 = time.monotonic()
                cpu0 = {"gateway": gw.cpu_seconds(), "worker": wk.cpu_seconds()}
                held = hold_for(drv, cfg.in_flight, cfg.steady_s, load, rng)
                batch(drv, level, load, rng, deadline)
                t1 = time.monotonic()
                level.in_flight = held + level.in_flight
                out["window"] = t1 - t0
                for name, watch, lag_file in (
                    ("gateway", gw, world.lag_file),
                    ("worker", wk, worker.lag_file),
                ):
                    out[name] = {
                        "rss": watch.max_rss(t0, t1), "hwm": peak_rss(pids[name]) or 0,
                        "cpu": watch.cpu_seconds() - cpu0[name], "lag": read_lag(lag_file, t0, t1),
                    }  # fmt: skip
                db = drv.db()
                marks = ",".join("?" * len(ACTIVE))
                driving = Counter[str]()
                for owner, count in db.rows(
                    f"SELECT lease_owner, COUNT(*) FROM jobs WHERE state IN ({marks}) GROUP BY lease_owner",  # noqa: S608
                    ACTIVE,
                ):
                    driving[_name_of(owner, pids)] += int(count)
                claims = Counter[str]()
                for detail, count in db.rows(
                    "SELECT detail, COUNT(*) FROM job_events WHERE state = 'claimed' GROUP BY detail"
                ):
                    claims[_name_of(detail, pids)] += int(count)
                out["driving"], out["claims"] = dict(driving), dict(claims)
                out["jobs"] = int(db.value("SELECT COUNT(*) FROM jobs"))
                out["problems"] = {
                    "gateway": log_problems(world.bot.log()),
                    "worker": log_problems(worker.log()),
                }
        finally:
            drv.close()
    return out


def _name_of(owner: object, pids: dict[str, int]) -> str:
    if owner is None:
        return "unleased"
    pid = _pid_of(owner)
    return next((name for name, p in pids.items() if p == pid), "other")


# 2. Takeover after SIGKILL ---------------------------------------------------------------------------------
def _connections(proc: subprocess.Popen[bytes], port: int) -> int:
    """How many TCP connections `proc` holds to the PostgreSQL server."""
    with contextlib.suppress(psutil.Error):
        return sum(
            1 for c in psutil.Process(proc.pid).net_connections("tcp") if c.raddr and c.raddr[1] == port
        )
    return 0


def _takeover_once(server: PostgresServer, name: str, novita: FakeNovita, cfg: PostgresConfig, tmp: Path,
                   rng: random.Random, deadline: Deadline) -> dict[str, float]:  # fmt: skip
    """The first runner submits a job and drives it alone until Novita reports it processing; a second runner
    starts and connects; after a random wait (so that the kill falls at a random phase of the holder's lease
    renewals and of the other's claim ticks, as between unrelated processes) the lease holder is SIGKILLed."""
    url = new_database(server, name)
    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
        "NOVITA_API_KEY": novita.api_key, "NOVITA_BASE_URL": novita.base_url, "DATABASE_URL": url,
        "MEDIA_DIR": str(tmp / "media"), "JOB_LEASE_S": f"{cfg.lease_s:g}",
        "POLL_FIRST_S": "0.5", "POLL_MIN_S": "0.5", "POLL_MAX_S": "2",
    }  # fmt: skip
    db = Database(url=url)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        with (tmp / f"runner-{len(procs)}.log").open("ab") as log:
            proc = subprocess.Popen([*RUNNER, "--log", str(tmp / "deliveries.log"), *args], cwd=ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(track(proc))
        return proc

    def lease() -> tuple[Any, ...] | None:
        with contextlib.suppress(Exception):  # the schema may not exist yet
            rows = db.rows("SELECT state, lease_owner, lease_until FROM jobs ORDER BY id LIMIT 1")
            return rows[0] if rows and rows[0][0] == "processing" and rows[0][1] else None
        return None

    try:
        first = spawn("--submit", "a lighthouse in the fog")
        wait_until(lambda: lease() or first.poll() is not None, deadline.left(60), "the job to be processing")
        second = spawn("--until-jobs", "1")
        # Its store's connections and the NOTIFY listener (opened as its runner starts); then a random wait,
        # so that the kill falls at a random phase of both processes' timers (renewals, claim ticks).
        wait_until(lambda: _connections(second, server.port) >= 5 or second.poll() is not None,
                   deadline.left(60), "the second runner to connect")  # fmt: skip
        time.sleep(0.5 + rng.uniform(0, cfg.lease_s / 3))
        row = lease()
        if row is None or first.poll() is not None or second.poll() is not None:
            raise RuntimeError(f"not as planned before the kill: job {row}")
        holder = next(p for p in procs if p.pid == _pid_of(row[1]))
        other = second if holder is first else first
        killed_at = time.time()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        row = db.rows("SELECT lease_until FROM jobs ORDER BY id LIMIT 1")[
            0
        ]  # the last renewal before the kill
        lease_left = _when(row[0]) - killed_at
        claimed = wait_until(
            lambda: db.value("SELECT at FROM job_events WHERE state = 'claimed' AND detail LIKE ? "
                             "ORDER BY id DESC LIMIT 1", [f"%:{other.pid}:%"]),
            deadline.left(cfg.lease_s * 4 + 10), "the other process's claim",
        )  # fmt: skip
        return {"takeover": _when(claimed) - killed_at, "lease_left": lease_left}
    except Exception as exc:
        tails = " | ".join(
            f"{log.name}: {log.read_text(errors='replace')[-600:]!r}"
            for log in sorted(tmp.glob("runner-*.log"))
        )
        raise RuntimeError(f"{exc} (exit codes {[p.poll() for p in procs]}; {tails})") from exc
    finally:
        db.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            untrack(proc)


def _takeovers(server: PostgresServer, cfg: PostgresConfig, deadline: Deadline) -> list[dict[str, float]]:
    out = []
    rng = random.Random(cfg.seed)
    with FakeNovita(default_timeline=Timeline(queued_s=0.2, processing_s=600)).threaded() as novita:
        for n in range(cfg.takeovers):
            deadline.check()
            with tempfile.TemporaryDirectory(prefix="hailuo-bench-pg-takeover-") as tmp:
                out.append(
                    _takeover_once(server, f"bench_takeover_{n}", novita, cfg, Path(tmp), rng, deadline)
                )
    return out


# 3. Store throughput ----------------------------------------------------------------------------------------
@dataclass
class Member:
    guild: int
    user: int
    roles: tuple[int, ...]
    allowance: int | None  # credits; None: not bound by credits


@dataclass
class AdmitRun:
    label: str
    processes: int
    seconds: float = math.nan
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    cpu_clients: float = 0.0  # CPU seconds of the admit processes while they ran
    cpu_server: float = 0.0  # and of the PostgreSQL server (postmaster and backends)
    busy: float = math.nan  # share of the machine's CPUs busy meanwhile (everyone's processes)

    @property
    def decisions(self) -> int:
        return sum(self.outcomes.values())


GUILD0 = 2000


def _server_kind(index: int) -> str:
    """Two servers bound by the members' credits, one by a monthly USD budget, the rest open."""
    return "quota" if index < 2 else "budget" if index == 2 else "open"


async def _setup_policies(store: Any, cfg: PostgresConfig) -> list[Member]:
    members = []
    for s in range(cfg.servers):
        guild, kind = GUILD0 + s, _server_kind(s)
        if kind == "budget":
            await store.set_guild_settings(guild, None, budget_usd=cfg.budget_usd, quota_credits=-1)
        elif kind == "open":
            await store.set_guild_settings(guild, None, quota_credits=-1)
        else:
            await store.set_role_limit(guild, ROLE, cfg.default_credits + 10, None)
        for i in range(cfg.members_per_server):
            user = 10_000 + s * 100 + i
            if kind != "quota":
                members.append(Member(guild, user, (), None))
                continue
            roles, allowance = await mixed_policy(store, guild, user, i, cfg.default_credits)
            members.append(Member(guild, user, roles, allowance))
    return members


def _prepare(url: str | None, sqlite: Path | None, cfg: PostgresConfig, tmp: Path) -> list[Member]:
    import asyncio

    from bench.admit_process import settings_for

    spec = {"url": url, "sqlite": str(sqlite) if sqlite else None, "default_credits": cfg.default_credits}

    async def go() -> list[Member]:
        from bot.core.store import open_store

        settings = settings_for(spec, tmp)
        store = open_store(settings.database_path, settings.database_url_value)
        await store.open()
        try:
            return await _setup_policies(store, cfg)
        finally:
            await store.close()

    return asyncio.run(go())


def _verify(db: Database, members: list[Member], cfg: PostgresConfig) -> dict[str, Any]:
    """Independent of quota.py: credits reserved per member and period against the allowances set here, the
    budgeted server's spend against its budget, and the ledger's reservations against the jobs."""
    used = Counter[tuple[int, int]]()
    for guild, user, _period, credits in db.rows(
        "SELECT guild_id, user_id, period_start, SUM(credits) FROM jobs WHERE charge_state = 'reserved' "
        "GROUP BY guild_id, user_id, period_start"
    ):
        used[(int(guild), int(user))] = max(used[(int(guild), int(user))], int(credits))
    over = [m for m in members if m.allowance is not None and used[(m.guild, m.user)] > m.allowance]
    bound = [m for m in members if m.allowance is not None]
    full = [m for m in bound if used[(m.guild, m.user)] >= m.allowance - 1]  # type: ignore[operator]
    budget_guild = GUILD0 + next(s for s in range(cfg.servers) if _server_kind(s) == "budget")
    spent = float(db.value("SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id = ?", [budget_guild]))
    ledger = int(db.value("SELECT COALESCE(SUM(credits), 0) FROM ledger WHERE kind = 'reserve'"))
    jobs = int(db.value("SELECT COALESCE(SUM(credits), 0) FROM jobs"))
    return {
        "overspent_members": len(over), "full_members": len(full), "bound_members": len(bound),
        "budget_spent": spent, "budget_ok": spent <= cfg.budget_usd + 1e-9, "ledger_matches": ledger == jobs,
    }  # fmt: skip


def _server_cpu(server: PostgresServer | None) -> dict[int, float]:
    """CPU seconds so far of each process of the PostgreSQL server (the postmaster and its children)."""
    if server is None:
        return {}
    out = {}
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        postmaster = psutil.Process(int((server.data / "postmaster.pid").read_text().split()[0]))
        for proc in (postmaster, *postmaster.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
    return out


def _machine_idle() -> tuple[float, float]:
    return time.monotonic(), psutil.cpu_times().idle


def _admit_run(run: AdmitRun, url: str | None, sqlite: Path | None, cfg: PostgresConfig, tmp: Path,
               deadline: Deadline, server: PostgresServer | None = None) -> None:  # fmt: skip
    members = _prepare(url, sqlite, cfg, tmp)
    spec = {
        "url": url, "sqlite": str(sqlite) if sqlite else None, "default_credits": cfg.default_credits,
        "loops": cfg.admit_loops, "seconds": cfg.admit_seconds,
        "members": [[m.guild, m.user, list(m.roles)] for m in members],
    }  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[str]] = []
    try:
        for n in range(run.processes):
            path = tmp / f"admit-{n}.json"
            path.write_text(json.dumps({**spec, "seed": cfg.seed + n}))
            procs.append(track(subprocess.Popen(
                [*ADMITTER, str(path)], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True,
            )))  # fmt: skip
        for proc in procs:  # every process has its store open before any starts
            line = _readline(proc, deadline.left(60))
            if line.strip() != "ready":
                raise RuntimeError(f"an admit process did not start: {line!r}")
        server0, (wall0, idle0) = _server_cpu(server), _machine_idle()
        _tell(procs, "go")
        seconds = []
        for proc in procs:
            result = json.loads(_readline(proc, deadline.left(cfg.admit_seconds + 60)))
            run.outcomes.update(result["outcomes"])
            run.latencies_ms += result["latencies_ms"]
            run.cpu_clients += result["cpu"]
            seconds.append(result["seconds"])
        server1, (wall1, idle1) = _server_cpu(server), _machine_idle()
        run.cpu_server = sum(cpu - server0.get(pid, 0.0) for pid, cpu in server1.items())
        run.busy = 1 - (idle1 - idle0) / ((wall1 - wall0) * (os.cpu_count() or 1))
        _tell(procs, "bye")
        for proc in procs:
            proc.wait(deadline.left(30))
        run.seconds = max(seconds)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            untrack(proc)
    db = Database(url=url) if url else Database(path=sqlite)
    try:
        run.check = _verify(db, members, cfg)
    finally:
        db.close()


def _tell(procs: list[subprocess.Popen[str]], line: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of a child's stdout, or TimeoutError (the child is then killed by the caller)."""
    import threading

    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not got:
        raise TimeoutError(f"no answer from an admit process in {timeout:.0f} s")
    return got[0]


def _throughput(server: PostgresServer, cfg: PostgresConfig, deadline: Deadline) -> list[AdmitRun]:
    runs = [AdmitRun("SQLite", 1)] + [AdmitRun("PostgreSQL", n) for n in cfg.admit_processes]
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-pg-admit-") as tmp:
        for run in runs:
            deadline.check()
            folder = Path(tmp) / f"{run.label}-{run.processes}"
            folder.mkdir()
            if run.label == "SQLite":
                _admit_run(run, None, folder / "admit.db", cfg, folder, deadline)
            else:
                url = new_database(server, f"bench_admit_{run.processes}")
                _admit_run(run, url, None, cfg, folder, deadline, server)
    return runs


# The section -----------------------------------------------------------------------------------------------
def run(cfg: PostgresConfig, deadline: Deadline) -> Section:
    section = Section("postgres")
    errors: list[str] = []
    results: dict[str, Any] = {}
    parts: list[tuple[str, float, Callable[[PostgresServer, PostgresConfig, Deadline], Any]]] = [
        ("load", 0.5, _load), ("takeover", 0.25, _takeovers), ("throughput", 1.0, _throughput),
    ]  # fmt: skip
    with running_postgres() as server:
        add_cleanup(server.stop)  # the watchdog stops the server too (pg_ctl daemonises: no child of ours)
        try:
            for name, share, fn in parts:
                try:
                    results[name] = fn(
                        server, cfg, _part(deadline, deadline.left() * share, f"postgres {name}")
                    )
                except Exception as exc:
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            remove_cleanup(server.stop)
    if "load" in results:
        _load_figures(section, cfg, results["load"])
    if "takeover" in results:
        _takeover_figures(section, cfg, results["takeover"])
    if "throughput" in results:
        _throughput_figures(section, cfg, results["throughput"])
    if errors:
        section.error = "; ".join(errors)
    section.data = {
        "load": {k: v for k, v in results.get("load", {}).items() if k != "level"}
        | ({"times": results["load"]["level"].times} if "load" in results else {}),
        "takeover": results.get("takeover"),
        "throughput": [
            {"label": r.label, "processes": r.processes, "seconds": r.seconds, "outcomes": dict(r.outcomes),
             "check": r.check, "cpu_clients": r.cpu_clients, "cpu_server": r.cpu_server, "busy": r.busy}
            for r in results.get("throughput", [])
        ],
    }  # fmt: skip
    for name in ("gateway", "worker"):
        section.data["load"].get(name, {}).pop("lag", None)
    return section


def _load_figures(section: Section, cfg: PostgresConfig, out: dict[str, Any]) -> None:
    level: Level = out["level"]
    p50, p99 = percentile(level.times, 50), percentile(level.times, 99)
    section.add(
        f"first response p50 / p99, {cfg.in_flight:,} in flight, gateway + worker", f"{ms(p50)} / {ms(p99)}",
        "p99 < 100 ms", p99 < 0.100 and not level.unanswered and bool(level.times),
        "as with SQLite (a gateway event in, a callback out), but the admit is 15 statements in one "
        "transaction, each a round trip to PostgreSQL on loopback, under its server's advisory lock; both "
        "processes' polls and card edits share the CPUs with the server and the fakes",
    )  # fmt: skip
    bounds = {
        "gateway": "Python, discord.py, aiohttp and psycopg (~75 MB) plus a few kB per job it drives",
        "worker": "the same code without a gateway connection; a few kB per job it drives",
    }
    for name in ("gateway", "worker"):
        rss, hwm = out[name]["rss"], out[name]["hwm"]
        section.add(
            f"RSS, {name} process, {cfg.in_flight:,} in flight (peak since start)",
            f"{mbytes(rss)} ({mbytes(hwm)})", "< 200 MB", max(rss, hwm) < 200 * MB, bounds[name],
        )  # fmt: skip
    section.add(
        f"top-up to {cfg.in_flight:,}: /video left unanswered ({cfg.ramp_pace:g} a second, one server)",
        f"{out['top_up_late']:,} of {out['top_up_sent']:,}",
        bound="admissions in one server are serialised (an advisory lock held over 15 round trips, each "
        "waiting for the GIL in a busy process): about 20–30 a second here under load",
    )
    driving, claims = out["driving"], out["claims"]
    section.add(
        "jobs in flight driven by gateway / worker",
        f"{driving.get('gateway', 0):,} / {driving.get('worker', 0):,}",
        bound="born unleased: whichever runner claims a job first drives it (the gateway when it has "
        "answered, the worker when NOTIFY wakes it)",
    )
    flight = level.in_flight or [0]
    gw, wk = lag_summary(out["gateway"]["lag"]), lag_summary(out["worker"]["lag"])
    section.notes.append(
        f"postgres, {cfg.in_flight:,} in flight: n={len(level.times)} first responses at {cfg.pace:g}/s "
        f"after "
        f"{cfg.steady_s:g} s holding the level; in flight {min(flight)}–{max(flight)}; max "
        f"{ms(max(level.times, default=math.nan))}; unanswered {level.unanswered}, refused {level.refused}; "
        f"{out['jobs']:,} jobs made; Novita timelines log-uniform {cfg.completion_s[0]:g}–"
        f"{cfg.completion_s[1]:g} s; the top-up took {out['top_up_s']:.0f} s. Over the "
        f"{out['window']:.0f} s window: CPU gateway "
        f"{out['gateway']['cpu']:.1f} s, worker {out['worker']['cpu']:.1f} s; loop lag p99 (max) gateway "
        f"{ms(gw[1])} ({ms(gw[2])}), worker {ms(wk[1])} ({ms(wk[2])}). Jobs in flight by lease owner "
        f"{driving}; claimed events by process {claims}; logs: {out['problems']}"
    )


def _takeover_figures(section: Section, cfg: PostgresConfig, trials: list[dict[str, float]]) -> None:
    times = [t["takeover"] for t in trials]
    left = [t["lease_left"] for t in trials]
    limit = cfg.lease_s + 2
    section.add(
        f"takeover after SIGKILL, median (max), JOB_LEASE_S={cfg.lease_s:g}",
        f"{secs(percentile(times, 50))} ({secs(max(times, default=math.nan))})",
        f"≤ lease + 2 s ({limit:g} s)", bool(times) and max(times) <= limit,
        "the lease left at the kill (renewed every lease/3: between 2/3 of it and all of it) plus up to one "
        "claim interval of the survivor (min(2 s, lease/3))",
    )  # fmt: skip
    section.notes.append(
        f"takeover: {len(times)} kills of the lease holder while its job was processing; takeover "
        f"{', '.join(secs(t) for t in times)}; lease left at each kill {', '.join(secs(t) for t in left)}"
    )


def _throughput_figures(section: Section, cfg: PostgresConfig, runs: list[AdmitRun]) -> None:
    bound = (
        "CPU: an admission is 15 statements (advisory lock, policy and usage reads, three inserts, NOTIFY) "
        "and the Python around them; SQLite runs them in-process on one thread, PostgreSQL pays the driver, "
        "a loopback round trip and the server's work for each; admissions in one server wait for each other"
    )
    for run in runs:
        rate = run.decisions / run.seconds if run.seconds else math.nan
        reserved = run.outcomes["reserved"] / run.seconds if run.seconds else math.nan
        procs = f"{run.processes} process{'es' if run.processes > 1 else ''}"
        section.add(
            f"admissions / s, {run.label}, {procs}",
            f"{rate:,.0f} /s ({reserved:,.0f} reserved)",
            bound=bound if run is runs[0] else "",
        )
    failed = [
        r for r in runs
        if not r.check
        or r.check["overspent_members"]
        or not r.check["budget_ok"]
        or not r.check["ledger_matches"]
    ]  # fmt: skip
    over = sum(r.check.get("overspent_members", 0) for r in runs)
    budgets = sum(1 for r in runs if not r.check.get("budget_ok"))
    section.add(
        "members over their allowance · servers over budget (all runs)", f"{over} · {budgets}", "0 · 0",
        not failed, "correctness, not speed: check and reservation are one transaction, serialised per "
        "server across processes",
    )  # fmt: skip
    for run in runs:
        lat, n = run.latencies_ms, max(run.decisions, 1)
        section.notes.append(
            f"admissions, {run.label} × {run.processes}: {run.decisions:,} in {run.seconds:.1f} s from "
            f"{run.processes * cfg.admit_loops} loops ({cfg.servers} servers, "
            f"{cfg.servers * cfg.members_per_server} members); admit latency p50/p99 "
            f"{percentile(lat, 50):.1f}/{percentile(lat, 99):.1f} ms; CPU per admission "
            f"{run.cpu_clients / n * 1000:.2f} ms in the admitting processes"
            + (f" + {run.cpu_server / n * 1000:.2f} ms in PostgreSQL" if run.label != "SQLite" else "")
            + f"; machine CPUs busy {run.busy:.0%} (everyone's); outcomes {dict(run.outcomes)}; credit-bound "
            f"members who used their allowance (to within one credit) {run.check.get('full_members')}/"
            f"{run.check.get('bound_members')}; budget spent "
            f"${run.check.get('budget_spent', math.nan):.2f} of "
            f"${cfg.budget_usd:.2f}; ledger matches jobs: {run.check.get('ledger_matches')}"
        )


if __name__ == "__main__":  # a quick look: python -m bench.postgres
    sec = run(
        PostgresConfig(in_flight=100, batch=12, steady_s=3, takeovers=2, admit_seconds=2), Deadline(300, "pg")
    )
    for fig in sec.figures:
        print(f"{fig.name:60} {fig.measured:32} {fig.target:16} {fig.verdict}")
    print(*sec.notes, sep="\n")
    if sec.error:
        print("ERROR", sec.error)
