"""Gateway sharding end to end: the real `python -m bot` as discord.py's AutoShardedBot against the
shard-aware fake Discord, in one process on SQLite and split between two processes on one PostgreSQL
database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.discord_side.app import INTENT_REFUSED
from tests.fakes.fake_discord import FakeDiscord, Guild, Interaction
from tests.support.harness import BotProcess, World, running_world

pytestmark = pytest.mark.e2e

RESULT = "hailuo:regen:{id}"


def sync_globally(world: World) -> None:
    """Register the commands for every server, as an operator does once (`python -m bot sync`)."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sync"],
        cwd=world.tmp, env=world.bot.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def guild_per_shard(d: FakeDiscord, count: int = 2) -> list[Guild]:
    """One server on each shard, with the test member in it."""
    guilds = [d.add_guild(f"Shard {n}", shard=(n, count)) for n in range(count)]
    for guild in guilds:
        assert d.shard_of(guild, count) == guilds.index(guild)
        d.add_member(guild, d.member)
    return guilds


def shard_that_received(d: FakeDiscord, inter: Interaction) -> list[int]:
    """The shards whose gateway session carried the interaction (Discord sends it on exactly one)."""
    return [
        shard
        for shard, session in d.gateway.shards.items()
        for _, frame in session.events
        if frame["t"] == "INTERACTION_CREATE" and frame["d"]["id"] == str(inter.id)
    ]


def videos_posted(d: FakeDiscord, guild: Guild) -> int:
    """Messages carrying a video in the guild's channel: a duplicate delivery would show as two."""
    channel = guild.channel_named("general")
    return sum(1 for m in d.bot_messages(channel) if any(a.filename.endswith(".mp4") for a in m.attachments))


def test_one_process_with_two_shards_serves_servers_on_both(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False, SHARD_COUNT="2") as world:
        d = world.discord
        guilds = guild_per_shard(d)
        sync_globally(world)
        world.start_bot()  # waits for a live session on shard 0 and on shard 1

        assert sorted(p["shard"] for p in d.gateway.identify_payloads) == [[0, 2], [1, 2]]
        for n, guild in enumerate(guilds):
            inter = d.slash("video", {"prompt": f"a lighthouse on shard {n}"}, guild=guild)
            assert not inter.wait_response().ephemeral
            assert shard_that_received(d, inter) == [n]
            card = inter.wait_original(lambda m: m.attachments, timeout=30)
            assert card.custom_ids()[0] == RESULT.format(id=n + 1)
        assert [world.settle(job_id) for job_id in (1, 2)] == ["delivered", "delivered"]
        assert world.rows("SELECT guild_id FROM jobs ORDER BY id") == [{"guild_id": g.id} for g in guilds]
        assert [videos_posted(d, g) for g in guilds] == [1, 1]
        log = world.bot.log()
        assert "shard 0 of 2 ready" in log
        assert "shard 1 of 2 ready" in log
        assert "Traceback" not in log


# Two processes, one shard each, on one PostgreSQL database -------------------------------------------------
def pg(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def job_of(card_custom_ids: list[str]) -> int:
    """The job id a result carries in its Regenerate button (`hailuo:regen:<id>`)."""
    regen = next(c for c in card_custom_ids if c.startswith("hailuo:regen:"))
    return int(regen.rsplit(":", 1)[1])


def settle(world: World, url: str, job_id: int) -> str:
    def state() -> str | None:
        [(value,)] = pg(url, "SELECT state FROM jobs WHERE id = %s", job_id)
        return str(value) if value in ("delivered", "failed", "cancelled", "undelivered") else None

    return world.wait_for(state, 40, f"job {job_id} to settle")


def submitted_by(url: str, job_id: int) -> list[str]:
    """The pid of every process that sent the job to Novita (once, by the process that admitted it)."""
    rows = pg(url, "SELECT owner FROM novita_submits WHERE job_id = %s", job_id)
    return [str(owner).split(":")[1] for (owner,) in rows]


def pid(bot: BotProcess) -> str:
    assert bot.proc is not None
    return str(bot.proc.pid)


def test_two_processes_split_the_shards_and_buttons_work_on_either(tmp_path: Path, postgres_url: str) -> None:
    with running_world(
        tmp_path, start=False, DATABASE_URL=postgres_url, SHARD_COUNT="2", SHARD_IDS="0"
    ) as world:
        d = world.discord
        guilds = guild_per_shard(d)
        sync_globally(world)
        first = world.bot
        second = world.spawn_bot("bot-shard1", SHARD_IDS="1")
        world.start_bot()  # shard 0 only
        world.start_bot(bot=second)  # shard 1 only
        assert [p["shard"] for p in d.gateway.identify_payloads] == [[0, 2], [1, 2]]
        by_shard = [first, second]

        cards = []
        for n, guild in enumerate(guilds):
            inter = d.slash("video", {"prompt": f"a harbour on shard {n}"}, guild=guild)
            assert not inter.wait_response().ephemeral
            assert shard_that_received(d, inter) == [n]
            cards.append(inter.wait_original(lambda m: m.attachments, timeout=30))
        jobs = [job_of(card.custom_ids()) for card in cards]
        for n, job_id in enumerate(jobs):
            assert settle(world, postgres_url, job_id) == "delivered"
            # Answered (admitted) by its shard's process; made by whichever process claimed it first.
            assert f"job={job_id} accepted" in by_shard[n].log()
            assert submitted_by(postgres_url, job_id)[0] in {pid(first), pid(second)}
        assert [videos_posted(d, g) for g in guilds] == [1, 1]  # each delivered once, by one process

        # A rolling deploy of shard 1: a new process takes the shard over (Discord ends the old session
        # of that shard only), then the old one stops. It never saw job 2, yet its Regenerate works.
        shard0_session, old_shard1_session = d.gateway.shards[0], d.gateway.shards[1]
        replacement = world.spawn_bot("bot-shard1-new", SHARD_IDS="1")
        world.start_bot(bot=replacement)
        assert old_shard1_session.invalidated
        assert d.gateway.shards[0] is shard0_session
        assert shard0_session.live
        assert second.stop() == 0
        by_shard = [first, replacement]

        for n, (guild, card) in enumerate(zip(guilds, cards, strict=True)):
            regen = d.click(card, f"hailuo:regen:{jobs[n]}")
            assert not regen.wait_response().ephemeral
            assert shard_that_received(d, regen) == [n]
            again = regen.wait_original(lambda m: m.attachments, timeout=30)
            job_id = job_of(again.custom_ids())
            assert settle(world, postgres_url, job_id) == "delivered"
            assert pg(postgres_url, "SELECT parent_job_id, guild_id FROM jobs WHERE id = %s", job_id) == [
                (jobs[n], guild.id)
            ]
            assert f"job={job_id} accepted" in by_shard[n].log()
            assert len(submitted_by(postgres_url, job_id)) == 1
        assert [videos_posted(d, g) for g in guilds] == [2, 2]
        assert len(world.novita.created_submits) == 4  # nothing sent twice
        for bot in (first, second, replacement):
            assert "Traceback" not in bot.log()


# Settings that cannot work stop the start, before Discord is asked anything ---------------------------------
@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SHARD_IDS": "1"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, "SHARD_IDS lists shard 2, but with SHARD_COUNT=2"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT is malformed"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1"}, "cannot share this SQLite database: set DATABASE_URL"),
    ],
)
def test_shard_settings_that_cannot_work_stop_the_start_naming_the_variable(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    with running_world(tmp_path, start=False) as world:
        result = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path, env={**world.bot.env, **env}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert said in result.stderr
        assert "Traceback" not in result.stderr
        assert world.discord.requests == []  # stopped before logging in
        assert not (tmp_path / "data" / "hailuo.db").exists()  # nor was the database touched


def test_sqlite_refusal_is_one_sentence(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False, SHARD_COUNT="4", SHARD_IDS="0,1") as world:
        result = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path, env=world.bot.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        line = result.stderr.strip().splitlines()[-1]  # after the DEBUG log's lines
        assert line.startswith("SHARD_IDS=0,1 leaves the other shards of SHARD_COUNT=4 to another process")
        assert line.endswith(".")
        assert ". " not in line


def test_a_bot_in_too_many_servers_for_one_connection_is_told_to_set_shard_count(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False, discord_options={"max_guilds_per_shard": 2}) as world:
        d = world.discord
        guild_per_shard(d)  # three servers: more than one session may carry here
        result = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path, env=world.bot.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert "Discord requires this bot to be sharded" in result.stderr
        assert "Set SHARD_COUNT" in result.stderr
        assert "Traceback" not in result.stderr
        assert [e.detail.get("code") for e in d.gateway.log if e.kind == "closed"] == [4011]

        world.bot.env["SHARD_COUNT"] = "2"
        world.start_bot()  # two shards carry them
        assert d.gateway.live_shards(shard_count=2) == {0, 1}


def test_a_sharded_bot_refused_the_content_intent_stops_with_the_same_sentence(tmp_path: Path) -> None:
    """AutoShardedBot reports a 4014 on a shard its own way; the operator still gets the one sentence."""
    with running_world(tmp_path, start=False, MESSAGE_CONTENT_INTENT="true", SHARD_COUNT="2") as world:
        result = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path, env=world.bot.env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        assert INTENT_REFUSED in result.stderr.splitlines()
        assert "Traceback" not in result.stderr
        assert 4014 in [e.detail["code"] for e in world.discord.gateway.log if e.kind == "closed"]
