"""Discord faults during a job: gateway drops, 429s on edits and uploads, a channel deleted mid-job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e


def test_gateway_disconnect_and_resume_during_a_job(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=3.0)) as world:
        inter = world.discord.slash("video", {"prompt": "through the storm"})
        inter.wait_original(lambda m: "Generating" in str(m.embeds), timeout=20)
        world.discord.disconnect_gateway(4000, resumable=True)
        world.discord.wait_for_resume(timeout=20)
        card = inter.wait_original(lambda m: m.attachments, timeout=30)
        assert len(card.attachments) == 1
        # And the bot still answers new interactions after resuming.
        again = world.discord.slash("video", {"prompt": "after the storm"}, user=world.discord.moderator)
        assert not again.wait_response(timeout=3).ephemeral


def test_rate_limited_edits_and_upload_still_deliver(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=1.5)) as world:
        world.discord.rate_limit("PATCH /webhooks/*", times=3, retry_after=0.4)
        inter = world.discord.slash("video", {"prompt": "patience"})
        card = inter.wait_original(lambda m: m.attachments, timeout=40)
        assert len(card.attachments) == 1
        limited = [r for r in world.discord.requests if r.status == 429]
        assert len(limited) == 3


def test_channel_deleted_mid_job_sends_the_video_by_dm(tmp_path: Path) -> None:
    with running_world(
        tmp_path,
        timeline=Timeline(queued_s=0.2, processing_s=3.0),
        token_lifetime_s=2.0,
    ) as world:
        member = world.discord.member
        extra = world.discord.add_channel(world.discord.guild, "art")
        inter = world.discord.slash("video", {"prompt": "gone"}, channel=extra)
        inter.wait_response()
        time.sleep(0.5)
        world.discord.delete_channel(extra)
        dms = world.wait_for(
            lambda: [m for m in world.discord.dm_messages(member) if m.attachments], what="the DM"
        )
        assert "#1" in dms[0].content


def test_nowhere_to_deliver_leaves_the_job_undelivered_and_kept(tmp_path: Path) -> None:
    with running_world(
        tmp_path,
        timeline=Timeline(queued_s=0.2, processing_s=2.5),
        token_lifetime_s=2.0,
    ) as world:
        member = world.discord.member
        world.discord.refuse_dms(member)
        inter = world.discord.slash("video", {"prompt": "lost and found"})
        inter.wait_response()
        world.discord.deny(world.discord.channel, "send_messages")
        assert world.settle() == "undelivered"
        [(path,)] = world.values("SELECT video_path FROM jobs WHERE id = 1")
        assert Path(path).exists()


def test_an_oversized_video_without_ffmpeg_is_kept_not_lost(tmp_path: Path) -> None:
    big = Timeline(queued_s=0.1, processing_s=0.5, video_bytes_target=12 * 1024 * 1024)
    missing = tmp_path / "no-ffmpeg"
    missing.write_text("#!/bin/sh\nexit 127\n")
    missing.chmod(0o755)
    with running_world(
        tmp_path, timeline=big, FFMPEG_BINARY=str(missing), IMAGEIO_FFMPEG_EXE=str(missing)
    ) as world:
        inter = world.discord.slash("video", {"prompt": "too big"})
        card = inter.wait_original(lambda m: "📦" in str(m.embeds), timeout=60)
        assert "kept for" in str(card.embeds[0])
        assert world.bot.alive()
        assert world.values("SELECT state FROM jobs") == [("undelivered",)]
