"""/about end to end: the real bot process against the fake Discord (and fake Novita)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import __version__
from bot.core.policy import GuildSettings
from bot.core.settings import Period, load_settings
from cogs.about import policy_line
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("about"), DEFAULT_QUOTA_CREDITS="3") as w:
        yield w


def about_text(world: World, **kwargs: object) -> str:
    inter = world.discord.slash("about", **kwargs)  # type: ignore[arg-type]
    response = inter.wait_response()
    assert response.ephemeral
    return json.dumps(response.data, ensure_ascii=False)


def test_about_shows_usage_policy_and_version_ephemerally(world: World) -> None:
    text = about_text(world)
    assert __version__ in text
    for entry in ("/video", "Animate image", f"<@{world.discord.bot_user.id}>"):
        assert entry in text
    assert "3 credits per member per day" in text
    assert "6 s 768P: 1 credit" in text
    assert "3 of 3 left today" in text
    assert "budget" not in text  # no budget set on this server
    assert "Trial mode" not in text


def test_policy_line_names_credits_period_and_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    settings = load_settings(discord_token="x.y.z", novita_api_key="k")
    line = policy_line(
        settings, GuildSettings(1, quota_credits=10, quota_period=Period.WEEK, budget_usd=20), 3.5
    )
    assert str(line).startswith("10 credits per member per week")
    assert str(line).endswith("Server budget: $3.50 of $20.00 a month used.")
    assert str(policy_line(settings, GuildSettings(1, quota_credits=-1), 0)).startswith(
        "Unlimited credits per member"
    )
    assert str(policy_line(settings, GuildSettings(1, quota_credits=0), 0)).startswith("Videos are off")
