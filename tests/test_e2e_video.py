"""/video end to end: the real bot process, the real discord.py client, fake Discord and fake Novita."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import media
from tests.fakes.novita import Timeline
from tests.support.builders import png
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path) as w:
        yield w


def status_lines(message) -> list[str]:
    lines = []
    for revision in message.history:
        for embed in revision.embeds or []:
            for f in embed.get("fields", []):
                if f["name"] == "Status" and (not lines or lines[-1] != f["value"]):
                    lines.append(f["value"])
    return lines


def test_text_video_is_delivered_as_the_job_card(world: World) -> None:
    inter = world.discord.slash("video", {"prompt": "a paper boat on a stormy sea"})
    response = inter.wait_response()
    assert not response.ephemeral
    assert inter.response_time is not None
    assert inter.response_time < 3
    card = inter.wait_original(lambda m: m.attachments, timeout=30)
    assert card.attachments[0].filename.endswith(".mp4")
    assert world.discord.cdn_bytes(card.attachments[0])[4:8] == b"ftyp"
    assert card.embeds[0]["title"].startswith("🎞️ Your video is ready")
    assert "credits left today" in str(card.embeds[0])
    submit = world.novita.submits[0]["body"]
    assert submit["prompt"] == "a paper boat on a stormy sea"
    assert submit["duration"] == 6
    assert "image" not in submit


def test_refusals_are_ephemeral_and_spend_nothing(world: World) -> None:
    cases = [
        ({"prompt": "x", "duration": 10, "resolution": "1080P"}, None, "1080P is only available"),
        ({"prompt": "x"}, {"image": ("tiny.png", png(200, 200), "image/png")}, "300 px"),
        ({"prompt": "x"}, {"image": ("anim.gif", b"GIF89a....", "image/gif")}, "GIF"),
    ]
    for options, attachments, expected in cases:
        inter = world.discord.slash("video", options, attachments=attachments)
        response = inter.wait_response()
        assert response.ephemeral, options
        assert expected in response.data["content"], response.data["content"]
    long = world.discord.slash("video", {"prompt": "y" * 2001}, strict=False)
    assert long.wait_response().ephemeral
    assert world.novita.submits == []


def assert_pings_only(world: World, allowed_user_ids: set[int]) -> None:
    """No message the bot sent can ping anyone but the requester."""
    for msg in world.discord.bot_messages():
        assert not msg.mention_everyone, msg.content
        assert msg.mention_roles == [], msg.content
        assert {u.id for u in msg.mentions} <= allowed_user_ids, msg.content


def test_a_long_job_shows_its_progress_and_pings_nobody_else(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=1.0, processing_s=4.0)) as world:
        prompt = "@everyone <@&123> look at <@999> a whale in the sky"
        inter = world.discord.slash("video", {"prompt": prompt, "camera": "Zoom in"})
        card = inter.wait_original(lambda m: m.attachments, timeout=40)
        lines = status_lines(card)
        kinds = {line.split()[0] for line in lines}
        assert len(kinds) >= 3, lines  # e.g. waiting in line, queued at the service, generating
        assert any("Generating" in line and "%" in line for line in lines), lines
        assert any("<t:" in line for line in lines), lines  # ETA as a Discord relative timestamp
        assert world.novita.submits[0]["body"]["prompt"] == prompt + " [Zoom in]"
        assert_pings_only(world, {world.discord.member.id})


def test_novita_failure_is_shown_and_refunded(tmp_path: Path) -> None:
    fail = Timeline(queued_s=0.2, processing_s=0.5, outcome="fail", reason="Content moderation: unsafe image")
    with running_world(tmp_path, timeline=fail) as world:
        inter = world.discord.slash("video", {"prompt": "something"})
        card = inter.wait_original(lambda m: "couldn't make" in str(m.embeds), timeout=30)
        text = str(card.embeds[0])
        assert "“Content moderation: unsafe image”" in text
        assert "credits were returned" in text
        assert world.values("SELECT state, charge_state FROM jobs") == [("failed", "refunded")]


def test_a_3000_character_novita_reason_still_reaches_the_member_and_the_modlog(tmp_path: Path) -> None:
    reason = "Content moderation: " + "unsafe " * 430  # ~3000 characters, past every embed field's limit
    fail = Timeline(queued_s=0.2, processing_s=0.5, outcome="fail", reason=reason)
    with running_world(tmp_path, timeline=fail) as world:
        d = world.discord
        modlog = d.add_channel(None, "mod-log")
        d.slash("settings", {"channel": modlog}, subcommand="modlog", user=d.moderator).wait_response()
        inter = d.slash("video", {"prompt": "something"})
        card = inter.wait_original(lambda m: "couldn't make" in m.text, timeout=30)
        status = next(f["value"] for f in card.embeds[0]["fields"] if f["name"] == "Status")
        assert status.startswith("❌ The video service couldn't make this video: “Content moderation: unsafe")
        assert len(status) <= 1024
        line = world.wait_for(
            lambda: next((m for m in d.bot_messages(modlog) if "#1" in m.content), None),
            what="the modlog line",
        )
        assert "❌" in line.content
        assert "Content moderation" in line.content
        refused = [r for r in d.requests if r.error_code == 50035]
        assert refused == []


def test_a_failure_whose_card_and_channel_refuse_the_bot_reaches_the_member_by_dm(tmp_path: Path) -> None:
    fail = Timeline(queued_s=0.2, processing_s=2.5, outcome="fail", reason="Content moderation")
    with running_world(tmp_path, timeline=fail, token_lifetime_s=2.0) as world:
        d = world.discord
        inter = d.slash("video", {"prompt": "something"})
        inter.wait_response()
        d.deny(d.channel, "view_channel")  # the card can't be edited and nothing can be posted there
        dm = world.wait_for(lambda: d.dm_messages(d.member), what="the DM")[0]
        assert "#1" in dm.content
        assert "could not be made" in dm.content
        assert "Content moderation" in dm.content
        assert world.settle() == "failed"


def test_killed_mid_job_and_restarted_delivers_exactly_once(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=0.3, processing_s=4.0)) as world:
        inter = world.discord.slash("video", {"prompt": "a clock melting"})
        inter.wait_original(lambda m: "Generating" in str(m.embeds), timeout=30)
        world.bot.kill()
        world.restart_bot()
        card = inter.wait_original(lambda m: m.attachments, timeout=40)
        assert len(card.attachments) == 1
        world.bot.stop()
        uploads = [r for r in world.discord.requests if r.files]
        assert len(uploads) == 1
        assert len(world.novita.submits) == 1
        assert "resuming 1 unfinished job" in world.bot.log()


def test_a_job_that_outlives_the_token_arrives_in_the_channel(tmp_path: Path) -> None:
    with running_world(
        tmp_path,
        timeline=Timeline(queued_s=0.2, processing_s=4.0),
        token_lifetime_s=3.0,
    ) as world:
        member = world.discord.member
        inter = world.discord.slash("video", {"prompt": "fireworks over a harbour"})
        result = world.discord.wait_for_message(lambda m: m.attachments and m.author.bot, timeout=40)
        assert result.id != inter.original_message_id
        assert result.message_reference is not None
        assert int(result.message_reference["message_id"]) == inter.original_message_id
        assert [u.id for u in result.mentions] == [member.id]
        expired = [r for r in world.discord.requests if r.error_code == 50027]
        assert expired == []  # never edited with a dead token
        card = inter.wait_original(lambda m: "Done" in str(m.embeds), timeout=10)  # edited just after
        assert str(result.id) in str(card.embeds[0])  # the card links to the result
        assert_pings_only(world, {member.id})


def test_an_oversized_video_is_reencoded_under_the_limit(tmp_path: Path) -> None:
    big = Timeline(queued_s=0.1, processing_s=0.5, video_bytes_target=14 * 1024 * 1024)
    with running_world(tmp_path, timeline=big) as world:
        inter = world.discord.slash("video", {"prompt": "static noise"})
        card = inter.wait_original(lambda m: m.attachments, timeout=90)
        data = world.discord.cdn_bytes(card.attachments[0])
        assert len(data) <= 10 * 1024 * 1024
        assert "re-encoded" in str(card.embeds[0])
        clip = tmp_path / "got.mp4"
        clip.write_bytes(data)
        info = asyncio.run(media.probe_video(clip))
        assert info.duration_s == pytest.approx(6, abs=0.5)


def test_a_channel_that_refuses_the_bot_leads_to_a_dm(tmp_path: Path) -> None:
    with running_world(
        tmp_path,
        timeline=Timeline(queued_s=0.2, processing_s=3.0),
        token_lifetime_s=2.0,
    ) as world:
        member = world.discord.member
        inter = world.discord.slash("video", {"prompt": "a quiet forest"})
        inter.wait_response()
        world.discord.deny(world.discord.channel, "send_messages")
        dm = world.wait_for(
            lambda: next((m for m in world.discord.dm_messages(member) if m.attachments), None), what="the DM"
        )
        assert "couldn't post it in" in dm.content


def test_image_video_sends_the_normalised_attachment(world: World) -> None:
    image = ("photo.png", png(1200, 900), "image/png")
    inter = world.discord.slash("video", {"prompt": "the photo comes alive"}, attachments={"image": image})
    card = inter.wait_original(lambda m: m.attachments, timeout=30)
    assert "from an image" in str(card.embeds[0])
    task = next(iter(world.novita.tasks.values()))
    assert task.image_format == "JPEG"  # normalised before sending: Novita never fetches Discord's link
    assert task.image_size == (1200, 900)
    body = world.novita.bodies["minimax-hailuo-02"][0]
    assert "image_url" not in body  # the older field takes http(s) URLs only, never the data URI
    assert body["image"].startswith("data:image/jpeg;base64,")


def test_the_prompt_option_carries_discords_own_limits(world: World) -> None:
    options = {o["name"]: o for o in world.discord.commands["video"].payload["options"]}
    assert list(options) == [
        "prompt", "image", "duration", "resolution", "prompt_expansion", "camera", "model", "last_frame",
    ]  # fmt: skip
    assert [(c["name"], c["value"]) for c in options["model"]["choices"]] == [
        ("Hailuo-02", "hailuo-02"), ("Hailuo 2.3", "hailuo-2.3"), ("Hailuo 2.3 Fast", "hailuo-2.3-fast"),
    ]  # fmt: skip
    assert options["last_frame"]["type"] == 11  # an attachment
    assert options["prompt"]["required"] is True
    assert options["prompt"]["max_length"] == 2000
    assert [c["value"] for c in options["duration"]["choices"]] == [6, 10]
    assert len(options["camera"]["choices"]) == 15
    assert world.discord.intents is not None
    privileged = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content
    assert world.discord.intents & privileged == 0


def test_sync_command_registers_the_commands_in_one_server(tmp_path: Path) -> None:
    with running_world(tmp_path, start=False) as world:
        result = subprocess.run(
            [sys.executable, "-m", "bot", "sync", "--guild", str(world.discord.guild.id)],
            cwd=tmp_path, env=world.bot.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Synced" in result.stdout
        assert "video" in world.discord.commands
        assert world.discord.token not in result.stdout + result.stderr
