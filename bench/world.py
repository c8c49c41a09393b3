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
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, percentile, track, untrack
from bench.fakes import BenchNovita
from tests.fakes.fake_discord import FakeDiscord
from tests.support.harness import BotProcess, World

PROBE_DIR = ROOT / "bench" / "probe"

# What the bench sets on top of the production defaults. Everything else (POLL_*, CARD_EDIT_INTERVAL_S,
# NOVITA_REQUEST_TIMEOUT_S, ...) keeps its default from bot/core/settings.py.
BASE_ENV = {"LOG_LEVEL": "INFO"}


@dataclass
class BenchWorld(World):
    lag_file: Path = Path()

    def lag_samples(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        """Loop-lag samples (seconds) the probe recorded between two monotonic instants."""
        out = []
        with contextlib.suppress(OSError), self.lag_file.open() as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and start <= float(parts[0]) <= end:
                    out.append(float(parts[1]) / 1000)
        return out

    @property
    def pid(self) -> int:
        assert self.bot.proc is not None
        return self.bot.proc.pid


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
            kept = Path(tempfile.gettempdir()) / f"hailuo-bench-bot-{os.getpid()}.log"
            with contextlib.suppress(OSError):
                shutil.copyfile(bot.log_path, kept)
                print(f"bench: the bot's log is kept at {kept}", file=sys.stderr)
            raise
        finally:
            bot.stop(timeout=30)
            if bot.proc is not None:
                untrack(bot.proc)
