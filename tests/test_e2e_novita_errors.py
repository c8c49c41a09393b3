"""Novita's documented error reasons through the real bot process: what the member reads on the job card,
what the moderation log says, and the pause after the account ran out of credit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_discord import Channel, Interaction, Message
from tests.support.builders import png
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e

PAUSE_S = "3"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("errors")
    settings = {"DEFAULT_QUOTA_CREDITS": "-1", "USER_MAX_CONCURRENT": "50", "NOVITA_BALANCE_PAUSE_S": PAUSE_S}
    with running_world(tmp, **settings) as w:
        modlog = w.discord.add_channel(None, "mod-log")
        inter = w.discord.slash(
            "settings", {"channel": modlog}, subcommand="modlog", user=w.discord.moderator
        )
        inter.wait_response()
        w.modlog = modlog  # type: ignore[attr-defined]
        yield w


def failed_card(inter: Interaction) -> Message:
    return inter.wait_original(lambda m: "❌" in str(m.embeds), timeout=30)


def modlog_line(world: World, job_id: int) -> str:
    channel: Channel = world.modlog  # type: ignore[attr-defined]
    found = world.wait_for(
        lambda: next((m for m in world.discord.bot_messages(channel) if f"**#{job_id}**" in m.content), None),
        what=f"the modlog line of #{job_id}",
    )
    return found.content.replace("\\_", "_")  # markdown-escaped for Discord


def last_job_id(world: World) -> int:
    return int(world.rows("SELECT MAX(id) AS id FROM jobs")[0]["id"])


REASONS = [
    (
        "ILLEGAL_PROMPT",
        400,
        "Novita's content rules refused the prompt. Change the wording and try again.",
        None,
    ),
    (
        "ILLEGAL_IMAGE_CONTENT",
        400,
        "Novita's content rules refused the image. Try a different picture.",
        None,
    ),
    ("INVALID_API_KEY", 403, "The video service rejected the bot's API key", "check NOVITA_API_KEY"),
    (
        "API_NOT_ALLOWED",
        403,
        "The video service can't be used with the bot's account",
        "enable this model's API",
    ),
    ("NEED_REAL_NAME_VERIFY", 403, "The video service can't be used with the bot's account", "real-name"),
]


@pytest.mark.parametrize(("reason", "status", "member", "operator"), REASONS, ids=[r[0] for r in REASONS])
def test_each_documented_reason_reads_plainly_and_tells_the_moderators(
    world: World, reason: str, status: int, member: str, operator: str | None
) -> None:
    world.novita.inject("submit", "status", status=status, reason=reason)
    image = {"image": ("pic.png", png(640, 480), "image/png")} if reason == "ILLEGAL_IMAGE_CONTENT" else None
    inter = world.discord.slash("video", {"prompt": f"a test of {reason}"}, attachments=image)
    card = failed_card(inter)
    status_text = next(f["value"] for f in card.embeds[0]["fields"] if f["name"] == "Status")
    assert status_text.startswith(f"❌ {member}"), status_text
    assert "credits were returned" in status_text
    assert reason not in status_text
    job_id = last_job_id(world)
    assert world.rows("SELECT charge_state FROM jobs WHERE id = ?", job_id) == [{"charge_state": "refunded"}]
    line = modlog_line(world, job_id)
    assert reason in line
    if operator:
        assert operator in line
        assert operator in world.bot.log()


def test_an_unknown_reason_is_quoted_safely(world: World) -> None:
    world.novita.inject("submit", "status", status=400, reason="<@&1> **NEW_RULE**\n`x`", message="odd")
    card = failed_card(world.discord.slash("video", {"prompt": "an odd refusal"}))
    status_text = next(f["value"] for f in card.embeds[0]["fields"] if f["name"] == "Status")
    assert "NEW_RULE" in status_text
    for unsafe in ("<@", "**", "`", "\n"):
        assert unsafe not in status_text


@pytest.mark.parametrize(
    ("reason", "status"), [("BILLING_BALANCE_NOT_ENOUGH", 400), ("NOT_ENOUGH_BALANCE", 403)]
)
def test_out_of_credit_tells_the_member_and_moderators_and_queued_jobs_wait(
    world: World, reason: str, status: int
) -> None:
    d = world.discord
    world.novita.inject("submit", "status", status=status, reason=reason)
    submits = len(world.novita.submits)
    card = failed_card(d.slash("video", {"prompt": f"no money ({reason})"}))
    text = str(card.embeds[0])
    assert "The server's video account is out of credit" in text
    assert "moderators have been told" in text
    line = modlog_line(world, last_job_id(world))
    assert reason in line
    assert "top up" in line

    waiting = d.slash("video", {"prompt": "waits for the top-up"})
    held = waiting.wait_original(lambda m: "⏸️" in str(m.embeds), timeout=10)
    assert "out of credit" in str(held.embeds[0])
    assert len(world.novita.submits) == submits + 1  # no retry storm: it waits out the pause
    result = waiting.wait_original(lambda m: m.attachments, timeout=40)
    assert "⏸️" not in str(result.embeds[0])
    assert len(world.novita.submits) == submits + 2


def test_image_url_can_carry_the_attachments_link_never_the_data_uri(tmp_path: Path) -> None:
    with running_world(tmp_path, NOVITA_IMAGE_FIELDS="image,image_url") as world:
        image = {"image": ("pic.png", png(640, 480), "image/png")}
        inter = world.discord.slash("video", {"prompt": "both fields"}, attachments=image)
        assert inter.wait_original(lambda m: m.attachments, timeout=30).attachments
        body = world.novita.bodies["minimax-hailuo-02"][0]
        assert body["image"].startswith("data:image/jpeg;base64,")
        assert body["image_url"].startswith(("http://", "https://"))
        assert "pic.png" in body["image_url"]
