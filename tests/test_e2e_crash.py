"""Crash at every state: SIGKILL the real bot process while a job is there, restart, and check the outcome.

The promise (docs/commands.md, "A restart loses nothing"): the job completes or ends cleanly with a refund,
the video is delivered at most once, and no submit is ever sent twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


def ledger(world: World) -> dict[str, int]:
    return dict(world.values("SELECT kind, SUM(credits) FROM ledger GROUP BY kind"))


def uploads(world: World) -> list[object]:
    return [r for r in world.discord.requests if r.files and 200 <= r.status < 300]


@pytest.mark.parametrize("state", ["submitted", "processing", "downloading", "delivering"])
def test_killed_in_a_paid_state_completes_once(tmp_path: Path, state: str) -> None:
    queued_s = 3.0 if state == "submitted" else 0.2
    with running_world(tmp_path, timeline=Timeline(queued_s=queued_s, processing_s=2.0)) as world:
        if state == "downloading":
            world.novita.inject("video", "hang", seconds=30)
        inter = world.discord.slash("video", {"prompt": f"killed while {state}"})
        if state == "delivering":
            world.wait_job_state("processing")
            rule = world.discord.rate_limit("PATCH /webhooks/*", times=1000, retry_after=5)
        world.wait_job_state(state)
        time.sleep(0.3)  # well inside the state: the request is on the wire
        world.bot.kill()
        assert world.job_state() == state
        if state == "delivering":
            rule.times = 0
        world.restart_bot()
        assert world.settle() == "delivered"
        card = inter.wait_original(lambda m: m.attachments, timeout=20)
        assert len(card.attachments) == 1
        assert len(uploads(world)) == 1
        assert len(world.novita.submits) == 1
        assert ledger(world) == {"reserve": 1, "charge": 1}


def test_killed_while_queued_locally_both_jobs_complete(tmp_path: Path) -> None:
    with running_world(
        tmp_path, timeline=Timeline(queued_s=0.2, processing_s=2.5), NOVITA_MAX_IN_FLIGHT="1"
    ) as world:
        first = world.discord.slash("video", {"prompt": "first"})
        world.wait_job_state("processing", 1)
        second = world.discord.slash("video", {"prompt": "second"}, user=world.discord.moderator)
        world.wait_job_state("queued", 2)
        world.bot.kill()
        world.restart_bot()
        assert world.settle(1) == "delivered"
        assert world.settle(2) == "delivered"
        for inter in (first, second):
            assert len(inter.wait_original(lambda m: m.attachments, timeout=20).attachments) == 1
        assert len(world.novita.submits) == 2
        assert len(uploads(world)) == 2


def test_killed_while_submitting_is_refunded_and_never_resubmitted(tmp_path: Path) -> None:
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=1.0)) as world:
        world.novita.inject("submit", "hang", seconds=30)
        inter = world.discord.slash("video", {"prompt": "on the wire"})
        world.wait_job_state("submitting")
        time.sleep(0.3)
        world.bot.kill()
        world.restart_bot()
        assert world.settle() == "failed"
        card = inter.wait_original(lambda m: "restarted" in str(m.embeds), timeout=20)
        assert "credits were returned" in str(card.embeds[0])
        assert len(world.novita.submits) == 1
        assert ledger(world) == {"reserve": 1, "refund": 1}
        assert uploads(world) == []


def test_killed_after_posting_with_the_card_deleted_uploads_exactly_once(tmp_path: Path) -> None:
    """The card is gone (404) and the channel post was made but not yet answered when the bot died: on the
    restart, the missing card must not stop the look at the channel, and the video is not posted again."""
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=1.5)) as world:
        d = world.discord
        inter = d.slash("video", {"prompt": "a card deleted mid-job"})
        d.delete_message(inter.wait_original())
        d.slow_answer("POST /channels/*/messages", seconds=600)
        d.wait_for_message(lambda m: m.author.bot and m.attachments, timeout=30)
        assert world.job_state() == "delivering"
        world.bot.kill()
        world.restart_bot()
        assert world.settle() == "delivered"
        posted = [m for m in d.bot_messages() if m.attachments]
        assert len(posted) == 1
        assert "#1 is ready" in posted[0].content
        assert ledger(world) == {"reserve": 1, "charge": 1}


def test_the_result_post_carries_a_nonce_that_discord_enforces(tmp_path: Path) -> None:
    with running_world(
        tmp_path, timeline=Timeline(queued_s=0.2, processing_s=1.0), token_lifetime_s=1.0
    ) as world:
        d = world.discord
        d.slash("video", {"prompt": "one post only"})
        result = d.wait_for_message(lambda m: m.author.bot and m.attachments, timeout=30)
        assert result.nonce == "hailuo-1-c"
        sent = next(r for r in d.requests if r.files and r.method == "POST")
        assert sent.json is not None
        assert sent.json["enforce_nonce"] is True
