"""Slash commands reach Discord by themselves, once: the first start registers them, a second start with
nothing changed sends no registration (one GET), and every sync failure is one sentence with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


def run_sync(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "sync", *args],
        cwd=world.tmp, env=world.bot.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def command_reads(world: World) -> int:
    return len(world.discord.requests_matching("GET", "/applications/*/commands"))


def test_sync_to_a_server_id_the_bot_is_not_in_says_what_to_do(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False) as world:
        result = run_sync(world, "--guild", "123456789012345678")  # Discord answers 403 / 50001
        assert result.returncode == 1
        assert world.discord.requests_matching("PUT", "/applications/*/guilds/123456789012345678/commands")
        assert "Traceback" not in result.stderr
        assert "Missing Access" not in result.stderr
        said = [line for line in result.stderr.splitlines() if not line[:4].isdigit()]  # not the log lines
        assert len(said) == 1
        assert said[0].startswith(
            "The bot is not in server 123456789012345678, or 123456789012345678 is not a server id: "
            "open the invite link first"
        )
        assert "invite --guild 123456789012345678" in result.stderr


def test_sync_before_the_invite_was_accepted_says_what_to_do(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False) as world:
        other = world.discord.add_guild("Not yet invited")
        world.discord.world.guilds[other.id].members.pop(world.discord.bot_user.id)
        result = run_sync(world, "--guild", str(other.id))
        assert result.returncode == 1
        assert f"The bot is not in server {other.id}" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_second_start_with_the_same_commands_registers_nothing(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:  # DEV_GUILD_ID: the commands go to the test server
        assert world.discord.command_syncs == 1
        assert "registered" in world.bot.log()
        world.bot.stop()
        reads_before = command_reads(world)
        world.restart_bot()
        world.wait_for(lambda: "up to date with Discord" in world.bot.log(), what="the sync decision")
        assert world.discord.command_syncs == 1  # no PUT on the second start
        assert command_reads(world) == reads_before + 1  # exactly one GET
        inter = world.discord.slash("about")  # and the commands work
        assert inter.wait_response().ephemeral


def test_commands_removed_on_discords_side_are_registered_again(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        world.bot.stop()
        world.discord.world.commands.clear()  # e.g. someone ran `sync --clear` with another copy
        world.restart_bot()
        world.wait_for(lambda: world.discord.command_syncs == 2, what="a second registration")
        assert "video" in world.discord.commands


def test_a_first_start_registers_global_commands_and_prints_no_voice_warnings(tmp_path: Path) -> None:
    with running_world(tmp_path, DEV_GUILD_ID="") as world:  # production: no development server
        assert set(world.discord.world.commands) == {None}  # global scope only
        assert "video" in world.discord.commands
        inter = world.discord.slash("about")
        assert inter.wait_response().ephemeral
        log = world.bot.log()
        assert "every server (global commands)" in log
        assert "PyNaCl" not in log
        assert "davey" not in log
        assert "voice will NOT be supported" not in log


def test_a_bot_in_no_server_says_so_and_shows_the_invite(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False, DEV_GUILD_ID="") as world:
        fake = world.discord
        fake.world.guilds[fake.guild.id].members.pop(fake.bot_user.id)  # the invite was never opened
        world.bot.start()
        world.wait_for(lambda: "the bot is in no server yet" in world.bot.log(), what="the hint")
        log = world.bot.log()
        assert f"https://discord.com/oauth2/authorize?client_id={fake.application_id}" in log
        assert "permissions=117760" in log


def test_a_dev_guild_the_bot_is_not_in_is_one_logged_sentence_and_the_bot_runs_on(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False, DEV_GUILD_ID="123456789012345678") as world:
        world.bot.start()
        world.wait_for(lambda: "slash commands:" in world.bot.log(), what="the sync outcome")
        log = world.bot.log()
        assert "The bot is not in server 123456789012345678" in log
        assert "Traceback" not in log
        world.wait_for(lambda: world.discord.gateway.identify_payloads, what="the gateway session")
        assert world.bot.alive()
