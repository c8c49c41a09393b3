"""`python -m bot check --online`: the Discord token and the Novita key, checked against the fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import discord
import pytest

from bot.discord_side.online_check import (
    PROBE_TASK_ID,
    check_discord,
    check_message_content_intent,
    check_novita,
)
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.novita import FakeNovita
from tests.support.harness import ROOT

WRONG_KEY = "sk_wrong_key_0123456789"


@pytest.fixture
async def novita() -> AsyncIterator[FakeNovita]:
    async with FakeNovita() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_novita_right_key_passes_without_creating_anything(
    novita: FakeNovita, http: aiohttp.ClientSession
) -> None:
    outcome = await check_novita(http, novita.base_url, novita.api_key)
    assert outcome.ok, str(outcome.message)
    assert novita.submits == []
    assert novita.poll_count(PROBE_TASK_ID) == 1


async def test_novita_wrong_key_is_named_and_not_echoed(
    novita: FakeNovita, http: aiohttp.ClientSession
) -> None:
    outcome = await check_novita(http, novita.base_url, WRONG_KEY)
    assert not outcome.ok
    assert "NOVITA_API_KEY" in str(outcome.message)
    assert "401" in str(outcome.message)
    assert WRONG_KEY not in str(outcome.message)


async def test_novita_empty_balance_is_reported(novita: FakeNovita, http: aiohttp.ClientSession) -> None:
    novita.inject("poll", "status", status=403, reason="NOT_ENOUGH_BALANCE", message="Not enough balance.")
    outcome = await check_novita(http, novita.base_url, novita.api_key)
    assert not outcome.ok
    assert "balance" in str(outcome.message)


async def test_novita_unreachable_is_reported(http: aiohttp.ClientSession) -> None:
    outcome = await check_novita(http, "http://127.0.0.1:9", "key", timeout=5)
    assert not outcome.ok
    assert "Could not reach Novita" in str(outcome.message)


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_url)
        yield fake


async def test_discord_token_accepted(fake_discord: FakeDiscord) -> None:
    outcome = await check_discord(fake_discord.token)
    assert outcome.ok, str(outcome.message)
    assert fake_discord.bot_user.username in str(outcome.message)


async def test_discord_token_refused(fake_discord: FakeDiscord) -> None:
    head = fake_discord.token.split(".")[0]
    outcome = await check_discord(f"{head}.wrong.token-value")
    assert not outcome.ok
    assert "DISCORD_TOKEN" in str(outcome.message)


@pytest.mark.parametrize("toggled", [False, True], ids=["portal off", "portal on"])
async def test_the_message_content_intent_is_read_from_the_application_flags(
    monkeypatch: pytest.MonkeyPatch, toggled: bool
) -> None:
    async with FakeDiscord(privileged_intents=["message_content"] if toggled else []) as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_url)
        asked = await check_message_content_intent(fake.token, wanted=True)
        not_asked = await check_message_content_intent(fake.token, wanted=False)
        assert fake.requests_matching("GET", "/applications/@me")
    assert not_asked.ok, str(not_asked.message)  # without MESSAGE_CONTENT_INTENT either way is fine
    assert ("granted but not asked for" if toggled else "not granted") in str(not_asked.message)
    assert asked.ok is toggled, str(asked.message)
    if not toggled:
        assert str(asked.message).startswith("MESSAGE_CONTENT_INTENT=true, but the application doesn't have")
        assert "Bot → Privileged Gateway Intents → Message Content Intent" in str(asked.message)


# The CLI, with discord.py pointed at the fake by the harness's sitecustomize patch -------------------------


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeDiscord, FakeNovita]]:
    fake_discord, fake_novita = FakeDiscord(), FakeNovita()
    with fake_discord.threaded(), fake_novita.threaded():
        yield fake_discord, fake_novita


def check_online(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita], **env: str
) -> subprocess.CompletedProcess[str]:
    fake_discord, fake_novita = fakes
    settings = {
        "NOVITA_API_KEY": fake_novita.api_key,
        "NOVITA_BASE_URL": fake_novita.base_url,
        "DATABASE_PATH": str(tmp_path / "hailuo.db"),
        **env,
    }
    full = fake_discord.env(**settings)
    full["PYTHONPATH"] = os.pathsep.join([full["PYTHONPATH"], str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", "--online"],
        cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_check_online_passes_with_the_right_token_and_key(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]
) -> None:
    result = check_online(tmp_path, fakes)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "discord    ok   token accepted" in result.stdout
    assert "novita     ok   key accepted" in result.stdout
    assert (
        "intent     ok   Message Content intent not granted (MESSAGE_CONTENT_INTENT=false)" in result.stdout
    )
    assert "All good." in result.stdout


def test_cli_check_online_reports_an_asked_intent_the_application_lacks(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]
) -> None:
    result = check_online(tmp_path, fakes, MESSAGE_CONTENT_INTENT="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "problem    MESSAGE_CONTENT_INTENT=true, but the application doesn't have" in result.stderr
    assert "discord    ok   token accepted" in result.stdout


def test_cli_check_online_names_a_wrong_key(tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]) -> None:
    result = check_online(tmp_path, fakes, NOVITA_API_KEY=WRONG_KEY)
    assert result.returncode == 1
    assert "Novita refused NOVITA_API_KEY" in result.stderr
    assert "discord    ok" in result.stdout
    assert WRONG_KEY not in result.stdout + result.stderr


def test_cli_check_online_names_a_wrong_token(tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]) -> None:
    head = fakes[0].token.split(".")[0]
    result = check_online(tmp_path, fakes, DISCORD_TOKEN=f"{head}.wrong.token-value")
    assert result.returncode == 1
    assert "Discord refused DISCORD_TOKEN" in result.stderr
    assert "novita     ok" in result.stdout


def test_cli_check_online_in_trial_mode_skips_novita(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]
) -> None:
    result = check_online(tmp_path, fakes, NOVITA_MODE="simulate", NOVITA_API_KEY="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped: NOVITA_MODE=simulate" in result.stdout
    assert "TRIAL" in result.stdout


# Starting the bot with a wrong token, or with no route to Discord, ends at once with one clear sentence ----


def start_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "NOVITA_MODE": "simulate", "DATABASE_PATH": str(tmp_path / "hailuo.db")}
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_bot_with_a_refused_token_stops_clearly(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]
) -> None:
    head = fakes[0].token.split(".")[0]
    result = start_bot(tmp_path, fakes[0].env(DISCORD_TOKEN=f"{head}.wrong.token-value"))
    assert result.returncode == 2
    assert "Discord refused DISCORD_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_bot_without_a_route_to_discord_stops_clearly(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeNovita]
) -> None:
    env = fakes[0].env()
    env["HAILUO_FAKE_DISCORD_URL"] = "http://127.0.0.1:9"  # nothing listens there
    result = start_bot(tmp_path, env)
    assert result.returncode == 1
    assert "Could not reach Discord" in result.stderr
    assert "Traceback" not in result.stderr
