"""The job card as a member watches it: its edits are throttled, and a job waiting locally shows its place."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e


def test_card_edits_are_throttled_to_the_configured_interval(tmp_path: Path) -> None:
    with running_world(
        tmp_path, timeline=Timeline(queued_s=0.2, processing_s=5.0), CARD_EDIT_INTERVAL_S="1.0"
    ) as world:
        inter = world.discord.slash("video", {"prompt": "slow and steady"})
        card = inter.wait_original(lambda m: m.attachments, timeout=40)
        progress = [r for r in card.history[1:] if not r.attachments]  # the edits before the result
        assert len(progress) >= 3
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(progress)]
        assert min(gaps) >= 0.9, gaps  # polls come every 0.1-0.5 s here: without the throttle gaps are short


def test_a_job_waiting_locally_shows_its_place_in_line(tmp_path: Path) -> None:
    with running_world(
        tmp_path, timeline=Timeline(queued_s=0.2, processing_s=3.0), NOVITA_MAX_IN_FLIGHT="1"
    ) as world:
        d = world.discord
        first = d.slash("video", {"prompt": "first in line"})
        world.wait_job_state("processing", 1)
        second = d.slash("video", {"prompt": "second in line"}, user=d.moderator)
        waiting = second.wait_original(lambda m: "position 1" in str(m.embeds), timeout=10)
        assert "Waiting in line" in str(waiting.embeds[0])
        assert waiting.custom_ids()  # a Cancel button while it waits
        for inter in (first, second):
            inter.wait_original(lambda m: m.attachments, timeout=30)


def test_an_absurd_eta_from_novita_does_not_freeze_the_card(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=1.0)) as world:
        d = world.discord
        huge = {"task": {"status": "TASK_STATUS_PROCESSING", "eta": "1e12", "progress_percent": 40}}
        world.novita.inject("poll", "respond", times=100_000, body=huge)
        inter = d.slash("video", {"prompt": "a clock that never stops"})
        card = inter.wait_original(lambda m: "Generating" in m.text and "40 %" in m.text, timeout=20)
        assert "<t:" in card.text  # the (bounded) finish time is shown
        listing = d.slash("jobs")  # /jobs renders the same status line while the eta is absurd
        assert "Generating" in listing.wait_response().data["embeds"][0]["description"]
        world.novita.clear_faults()
        assert world.settle() == "delivered"
        assert "card update failed" not in world.bot.log()
