"""The real bot process (`python -m bot`) against the fake Discord and the bench's fake Novita.

Built from the end-to-end harness's pieces (`tests/support/harness.py`: `BotProcess`, `World`), with two
differences: the bot runs with the production defaults for polling, card edits and logging (the harness's
`FAST` settings poll every 0.1–0.5 s, which is not what we want to measure), and the lag probe
(`bench/probe/sitecustomize.py`) is on its PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, Database, percentile, track, untrack
from bench.fakes import BenchNovita
from tests.fakes.fake_discord import FakeDiscord
from tests.support.harness import BotProcess, World

PROBE_DIR = ROOT / "bench" / "probe"

# What the bench sets on top of the production defaults. Everything else (POLL_*, CARD_EDIT_INTERVAL_S,
# NOVITA_REQUEST_TIMEOUT_S, ...) keeps its default from bot/core/settings.py.
BASE_ENV = {"LOG_LEVEL": "INFO"}


def read_lag(lag_file: Path, start: float = 0.0, end: float = float("inf")) -> list[float]:
    """Loop-lag samples (seconds) the probe wrote to `lag_file` between two monotonic instants."""
    out = []
    with contextlib.suppress(OSError), lag_file.open() as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 2 and start <= float(parts[0]) <= end:
                out.append(float(parts[1]) / 1000)
    return out


@dataclass
class WorkerProcess(BotProcess):
    """`python -m bot worker`: runs jobs beside the gateway process, on the same PostgreSQL database."""

    lag_file: Path = Path()

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"], cwd=self.cwd, env=self.env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while "running jobs (no gateway connection)" not in self.log():
            if not self.alive() or time.monotonic() > end:
                raise RuntimeError(f"the worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass
class BenchWorld(World):
    lag_file: Path = Path()

    def lag_samples(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        """Loop-lag samples (seconds) the probe recorded in the gateway process between two instants."""
        return read_lag(self.lag_file, start, end)

    @property
    def pid(self) -> int:
        assert self.bot.proc is not None
        return self.bot.proc.pid

    def database(self) -> Database:
        """The bots' database, read from outside: PostgreSQL with DATABASE_URL, else the SQLite file."""
        url = self.settings_env.get("DATABASE_URL")
        return Database(url=url) if url else Database(path=self.db)

    def start_worker(self, name: str = "worker") -> WorkerProcess:
        """Start `python -m bot worker` on the same fakes and database (PostgreSQL), with its own lag file and
        log; stopped with the world."""
        lag_file = self.tmp / f"loop-lag-{name}.txt"
        env = {**self.bot.env, "HAILUO_BENCH_LAG_FILE": str(lag_file)}
        worker = WorkerProcess(env=env, cwd=self.tmp, log_path=self.tmp / f"{name}.log", lag_file=lag_file)
        self.more_bots.append(worker)
        worker.start()
        assert worker.proc is not None
        track(worker.proc)
        worker.wait_ready()
        return worker


def lag_summary(samples: list[float]) -> tuple[float, float, float]:
    return percentile(samples, 50), percentile(samples, 99), max(samples, default=float("nan"))


@contextlib.contextmanager
def bench_world(
    tmp: Path, novita: BenchNovita, *, env: dict[str, str], discord_options: dict[str, object] | None = None
) -> Iterator[BenchWorld]:
    fake_discord = FakeDiscord(**(discord_options or {}))  # type: ignore[arg-type]
    lag_file = tmp / "loop-lag.txt"
    with fake_discord.threaded(), novita.threaded():
        bot_env = fake_discord.env(
            NOVITA_API_KEY=novita.api_key,
            NOVITA_BASE_URL=novita.base_url,
            DATABASE_PATH=str(tmp / "data" / "hailuo.db"),
            MEDIA_DIR=str(tmp / "data" / "media"),
            DEV_GUILD_ID=str(fake_discord.guild.id),
            HAILUO_BENCH_LAG_FILE=str(lag_file),
            **{**BASE_ENV, **env},
        )
        bot_env["PYTHONPATH"] = os.pathsep.join([str(PROBE_DIR), bot_env["PYTHONPATH"], str(ROOT)])
        bot = BotProcess(env=bot_env, cwd=tmp, log_path=tmp / "bot.log")
        world = BenchWorld(fake_discord, novita, bot, tmp, env, lag_file=lag_file)
        try:
            bot.start()
            assert bot.proc is not None
            track(bot.proc)
            world.wait_ready(timeout=60)
            yield world
        except BaseException:
            for process in (bot, *world.more_bots):
                kept = Path(tempfile.gettempdir()) / f"hailuo-bench-{process.log_path.stem}-{os.getpid()}.log"
                with contextlib.suppress(OSError):
                    shutil.copyfile(process.log_path, kept)
                    print(
                        f"bench: the {process.log_path.stem} process's log is kept at {kept}", file=sys.stderr
                    )
            raise
        finally:
            for process in (*world.more_bots, bot):
                process.stop(timeout=30)
                if process.proc is not None:
                    untrack(process.proc)
