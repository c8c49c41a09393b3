"""Every embed the bot sends is within Discord's limits, checked by the fake Discord's own validator."""

from __future__ import annotations

import random

import pytest

from bot.core.models import ChargeState, Job, JobState, utcnow
from bot.discord_side import cards
from bot.discord_side.embeds import Embed, clamp, size
from tests.fakes.fake_discord.state import validate_message_body
from tests.fakes.fake_discord.util import DiscordHTTPError


def accepted(*embeds: Embed) -> bool:
    try:
        validate_message_body("", [e.to_dict() for e in embeds], [], 0, [])
    except DiscordHTTPError:
        return False
    return True


def test_the_fake_refuses_what_discord_refuses() -> None:
    import discord

    plain = discord.Embed(description="x")  # noqa: TID251 - the unprotected embed, to show the limit bites
    plain.add_field(name="Status", value="❌ " + "r" * 3000)
    with pytest.raises(DiscordHTTPError) as info:
        validate_message_body("", [plain.to_dict()], [], 0, [])
    assert (info.value.status, info.value.code) == (400, 50035)


@pytest.mark.parametrize("seed", range(40))
def test_any_embed_is_cut_to_discords_limits(seed: int) -> None:
    rng = random.Random(seed)

    def text(high: int) -> str:
        return "w" * rng.choice([0, 1, 5, high // 2, high, high + 1, high * 3])

    embed = Embed(title=text(256) or None, description=text(4096) or None)
    for _ in range(rng.choice([0, 3, 25, 30])):
        embed.add_field(name=text(256), value=text(1024), inline=rng.random() < 0.5)
    if rng.random() < 0.7:
        embed.set_footer(text=text(2048))
    if rng.random() < 0.3:
        embed.set_author(name=text(256))
    assert accepted(embed)
    assert size(embed.to_dict()) <= 6000


def test_short_parts_stay_whole_while_long_ones_give_way() -> None:
    embed = Embed(title="Video #1", description="p" * 4096)
    embed.add_field(name="Settings", value="6 s · 768P")
    for n in range(6):
        embed.add_field(name=f"Log {n}", value="l" * 1024)
    embed.add_field(name="Status", value="❌ The video failed.")
    data = embed.to_dict()
    assert size(data) <= 6000
    values = {f["name"]: f["value"] for f in data["fields"]}
    assert values["Settings"] == "6 s · 768P"
    assert values["Status"] == "❌ The video failed."
    assert data["description"].endswith("…")
    assert len(data["description"]) == len(values["Log 0"])  # the longest parts share what is left


def test_a_failed_card_with_a_3000_character_reason_is_sendable() -> None:
    now = utcnow()
    job = Job(
        id=7, state=JobState.FAILED, guild_id=1, channel_id=2, user_id=3, prompt="a storm", duration=6,
        resolution="768P", prompt_expansion=True, credits=1, cost_usd=0.28, charge_state=ChargeState.REFUNDED,
        created_at=now, updated_at=now, error=f"The video service couldn't make this video: “{'r' * 3000}”.",
    )  # fmt: skip
    card = cards.job_card(job)
    assert accepted(card)
    status = next(f for f in card.to_dict()["fields"] if f["name"] == "Status")
    assert status["value"].startswith("❌ The video service couldn't make this video")
    assert status["value"].endswith("…")


def test_details_of_a_job_with_a_long_prompt_and_error_is_sendable() -> None:
    from bot.discord_side.details import details_embed

    now = utcnow()
    job = Job(
        id=8, state=JobState.UNDELIVERED, guild_id=1, channel_id=2, user_id=3, prompt="p" * 2000,
        duration=6, resolution="768P", prompt_expansion=True, credits=1, cost_usd=0.28, camera="Zoom in",
        charge_state=ChargeState.CHARGED, created_at=now, updated_at=now, error="e" * 5000, task_id="t" * 300,
    )  # fmt: skip
    events = [{"state": state.value, "at": now.isoformat()} for state in JobState] * 20
    assert accepted(details_embed(job, events))


def test_clamp_keeps_what_fits_unchanged() -> None:
    data = {"title": "t", "description": "d", "fields": [{"name": "n", "value": "v", "inline": True}]}
    assert clamp(data) == data
