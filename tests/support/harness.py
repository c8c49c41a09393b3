"""End-to-end harness: the real bot process (`python -m bot`) against the fake Discord and fake Novita.

Both fakes run in their own threads inside the test process, so a test can drive Discord and inspect both
services directly while the bot runs, is killed and restarted as a separate process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.novita import FakeNovita, Timeline

ROOT = Path(__file__).resolve().parent.parent.parent
RESTING = ("delivered", "failed", "cancelled", "undelivered")
T = TypeVar("T")

FAST = {
    "POLL_MIN_S": "0.1",
    "POLL_FIRST_S": "0.2",
    "POLL_MAX_S": "0.5",
    "CARD_EDIT_INTERVAL_S": "0.2",
    "NOVITA_RATE_PER_MINUTE": "600",
    "LOG_LEVEL": "DEBUG",
}


@dataclass
class BotProcess:
    env: dict[str, str]
    cwd: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    args: tuple[str, ...] = ()  # a subcommand, e.g. ("worker",)

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self, timeout: float = 20) -> int | None:
        """A clean shutdown (SIGTERM, as docker and systemd send)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        """A crash: SIGKILL, no cleanup at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def shards(self) -> tuple[list[int], int] | None:
        """The shards this process connects and the shard count, from its SHARD_IDS / SHARD_COUNT."""
        count = self.env.get("SHARD_COUNT", "").strip()
        if not count:
            return None
        ids = [int(n) for n in self.env.get("SHARD_IDS", "").split(",") if n.strip()]
        return ids or list(range(int(count))), int(count)


@dataclass
class World:
    discord: FakeDiscord
    novita: FakeNovita
    bot: BotProcess
    tmp: Path
    settings_env: dict[str, str] = field(default_factory=dict)
    more_bots: list[BotProcess] = field(default_factory=list)

    def spawn_bot(self, name: str, **env: str) -> BotProcess:
        """Another `python -m bot` on the same fakes and data directory, with `env` on top of the first's
        environment (e.g. its own SHARD_IDS); its output goes to `<name>.log`. Not started yet."""
        bot = BotProcess(env={**self.bot.env, **env}, cwd=self.tmp, log_path=self.tmp / f"{name}.log")
        self.more_bots.append(bot)
        return bot

    def spawn_worker(self, name: str, **env: str) -> BotProcess:
        """A `python -m bot worker` (jobs only, no gateway; needs DATABASE_URL) like `spawn_bot`, started and
        running jobs when this returns."""
        worker = self.spawn_bot(name, **env)
        worker.args = ("worker",)
        worker.start()
        self.wait_for(lambda: not worker.alive() or "running jobs" in worker.log(), 40, f"{name} to start")
        assert worker.alive(), f"{name} exited early:\n{worker.log()[-4000:]}"
        return worker

    def start_bot(self, wait: bool = True, bot: BotProcess | None = None) -> None:
        bot = bot or self.bot
        identified = len(self.discord.gateway.identify_payloads)
        bot.start()
        if wait:
            self.wait_ready(identified, bot=bot)

    def wait_ready(
        self, identified_before: int = 0, timeout: float = 40, bot: BotProcess | None = None
    ) -> None:
        """Until this process has identified on a live gateway session (not a previous process's): with
        SHARD_COUNT, a live session for each shard it connects."""
        bot = bot or self.bot
        shards = bot.shards()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not bot.alive():
                raise AssertionError(f"the bot exited early:\n{bot.log()[-4000:]}")
            if len(self.discord.gateway.identify_payloads) > identified_before:
                with contextlib.suppress(Exception):
                    if shards is None:
                        self.discord.wait_until_ready(timeout=0.5)
                    else:
                        ids, count = shards
                        self.discord.wait_for_shards(ids, count, since=identified_before, timeout=0.5)
                    self.discord.wait_for_commands("video", timeout=0.5)
                    return
            time.sleep(0.02)
        raise AssertionError(f"the bot never became ready:\n{bot.log()[-4000:]}")

    def restart_bot(self) -> None:
        self.start_bot()

    @property
    def db(self) -> Path:
        return self.tmp / "data" / "hailuo.db"

    def wait_for(self, predicate: Callable[[], T | None], within: float = 40, what: str = "it") -> T:
        """Poll `predicate` until it returns something truthy; fail with the bot's log tail otherwise."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"waited {within:g}s for {what}\n{self.bot.log()[-3000:]}")

    def rows(self, sql: str, *params: object) -> list[dict[str, object]]:
        """Read the bot's database (read-only use; WAL lets the test read while the bot writes)."""
        with sqlite3.connect(self.db, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

    def values(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Like `rows`, as plain tuples (compact to compare: `== [("delivered",)]`)."""
        with sqlite3.connect(self.db, timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def job_state(self, job_id: int = 1) -> str | None:
        if not self.db.exists():
            return None
        with sqlite3.connect(self.db, timeout=5) as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", [job_id]).fetchone()
        return row[0] if row else None

    def wait_job_state(self, state: str, job_id: int = 1, within: float = 30) -> None:
        self.wait_for(lambda: self.job_state(job_id) == state, within, f"job {job_id} to be {state}")

    def settle(self, job_id: int = 1, within: float = 40) -> str:
        """Wait until the job rests; return its final state."""
        return self.wait_for(
            lambda: (s := self.job_state(job_id)) in RESTING and s, within, f"job {job_id} to settle"
        )


@contextlib.contextmanager
def running_world(
    tmp: Path,
    *,
    timeline: Timeline | None = None,
    start: bool = True,
    discord_options: dict[str, object] | None = None,
    token_lifetime_s: float | None = None,
    **settings: str,
) -> Iterator[World]:
    """`token_lifetime_s` shortens the interaction token's life on both sides (the fake and the bot)."""
    discord_options = dict(discord_options or {})
    if token_lifetime_s is not None:
        discord_options["token_lifetime"] = token_lifetime_s
        settings.setdefault("INTERACTION_TOKEN_MINUTES", f"{token_lifetime_s / 60:.4f}")
    fake_discord = FakeDiscord(**discord_options)  # type: ignore[arg-type]
    fake_novita = FakeNovita(default_timeline=timeline or Timeline(queued_s=0.3, processing_s=1.5))
    with fake_discord.threaded(), fake_novita.threaded():
        defaults = {
            "NOVITA_API_KEY": fake_novita.api_key,
            "NOVITA_BASE_URL": fake_novita.base_url,
            "DATABASE_PATH": str(tmp / "data" / "hailuo.db"),
            "MEDIA_DIR": str(tmp / "data" / "media"),
            "DEV_GUILD_ID": str(fake_discord.guild.id),
        }
        env = fake_discord.env(**{**defaults, **FAST, **settings})  # a test's settings win
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
        bot = BotProcess(env=env, cwd=tmp, log_path=tmp / "bot.log")
        world = World(fake_discord, fake_novita, bot, tmp, settings)
        try:
            if start:
                world.start_bot()
            yield world
            assert_answered_in_time(world)
            assert_pings_only_requesters(world)
            for process in (bot, *world.more_bots):
                process.stop()
            assert_no_secrets_written(world)
        finally:
            for process in (bot, *world.more_bots):
                process.stop()


def assert_no_secrets_written(world: World) -> None:
    """Neither the bot token nor the API key appears in anything the bot wrote: log, database, media."""
    secrets = [world.discord.token.encode(), world.novita.api_key.encode()]
    for path in world.tmp.rglob("*"):
        if path.is_file() and path.stat().st_size < 50 * 1024 * 1024:
            data = path.read_bytes()
            for secret in secrets:
                assert secret not in data, f"a secret was written to {path}"


def assert_pings_only_requesters(world: World) -> None:
    """No message the bot sent anywhere (channels, DMs, deleted ones too) pings anyone but a requester."""
    fake = world.discord
    requesters = {i.user.id for i in fake.interactions}
    requesters |= {m.author.id for m in fake.world.messages_by_id.values() if not m.author.bot}
    for msg in list(fake.world.messages_by_id.values()):
        if msg.author.id != fake.bot_user.id:
            continue
        assert not msg.mention_everyone, f"@everyone pinged by {msg.content!r}"
        assert msg.mention_roles == [], f"roles pinged by {msg.content!r}"
        pinged = {u.id for u in msg.mentions}
        assert pinged <= requesters, f"{pinged - requesters} pinged by {msg.content!r}"
        assert len(pinged) <= 1, f"several members pinged by {msg.content!r}"


def assert_answered_in_time(world: World, window: float = 3.0) -> None:
    """Discord's rule for every interaction the test made: a first response inside the window."""
    for inter in world.discord.interactions:
        if inter.response_time is not None:
            assert inter.response_time < window, f"{inter.describe()} answered in {inter.response_time:.2f}s"
        elif inter.age > window:
            raise AssertionError(f"{inter.describe()} was never answered")
