"""/jobs end to end: the caller's list, Redeliver for an undelivered video, Cancel for a waiting one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


def wait_state(world: World, job_id: int, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if world.values("SELECT state FROM jobs WHERE id = ?", job_id) == [(state,)]:
            return
        time.sleep(0.1)
    states = world.values("SELECT id, state FROM jobs")
    raise AssertionError(f"job {job_id} never became {state}: {states}")


def test_jobs_lists_and_redelivers_an_undelivered_video(tmp_path: Path) -> None:
    with running_world(tmp_path, INTERACTION_TOKEN_MINUTES="0.05") as world:  # the token is "dead" at once
        d = world.discord
        d.deny(d.channel, "send_messages")
        d.refuse_dms(d.member)
        card = d.slash("video", {"prompt": "a video nobody could see"}).wait_original()
        wait_state(world, 1, "undelivered")
        assert world.discord.dm_messages(d.member) == []

        d.allow(d.channel, "send_messages")
        listing_cmd = d.slash("jobs")
        assert listing_cmd.wait_response().ephemeral
        listing = listing_cmd.wait_original()
        assert "#1" in listing.text
        assert "a video nobody could see" in listing.text
        assert "Not delivered yet" in listing.text
        assert listing.custom_ids() == ["hailuo:redeliver:1"]

        other = d.add_member(None, "bob").user
        refusal = d.click(listing, "hailuo:redeliver:1", user=other).wait_response()
        assert "Only the member who asked for video #1" in refusal.content

        redeliver = d.click(listing, "hailuo:redeliver:1")
        redeliver.wait_response()
        posted = d.wait_for_message(lambda m: m.attachments and not m.ephemeral, timeout=20)
        assert posted.message_reference is not None
        assert posted.message_reference["message_id"] == str(card.id)
        assert [u.id for u in posted.mentions] == [d.member.id]
        wait_state(world, 1, "delivered", timeout=5)
        assert world.values("SELECT delivered_via FROM jobs WHERE id = 1") == [("channel",)]
        assert d.message(listing.id).custom_ids() == []  # the list was refreshed
        assert redeliver.wait_followup().ephemeral

        again = d.slash("jobs").wait_original()
        assert posted.jump_url.split("/channels/")[1] in again.text  # a link to the result


def test_jobs_cancels_a_waiting_job_with_a_refund(tmp_path: Path) -> None:
    slow = Timeline(queued_s=0.2, processing_s=60)
    with running_world(tmp_path, timeline=slow, NOVITA_MAX_IN_FLIGHT="1") as world:
        d = world.discord
        d.slash("video", {"prompt": "the long one"}).wait_response()
        d.wait_for(lambda: len(world.novita.submits) == 1, timeout=10, what="the first submit")
        card = d.slash("video", {"prompt": "waits its turn"}).wait_original()
        wait_state(world, 2, "queued", timeout=10)

        listing = d.slash("jobs").wait_original()
        assert listing.custom_ids() == ["hailuo:cancel:2"]  # #1 is at the video service already
        assert "position 1" in listing.text

        d.click(listing, "hailuo:cancel:2").wait_response()
        d.wait_for(lambda: d.message(listing.id).custom_ids() == [], timeout=5, what="the list refreshed")
        assert "Cancelled" in d.message(listing.id).text
        assert world.values("SELECT state, charge_state FROM jobs WHERE id = 2") == [
            ("cancelled", "refunded")
        ]
        d.wait_for(
            lambda: "Cancelled" in d.message(card.id).text, timeout=5, what="the card to say cancelled"
        )
        assert len(world.novita.submits) == 1
