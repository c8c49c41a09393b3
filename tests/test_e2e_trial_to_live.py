"""Going live on the trial's database starts from zero: the real bot in trial mode makes a video, then the
same database is started live; /usage, /about and /server-usage count nothing of the trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.fake_discord import Interaction
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e


def answer(inter: Interaction, timeout: float = 10) -> str:
    inter.wait_response(timeout)
    return inter.wait_original(lambda m: not m.loading, timeout).text


def test_going_live_after_a_trial_starts_from_zero(tmp_path: Path) -> None:
    with running_world(tmp_path, NOVITA_MODE="simulate", MONTHLY_BUDGET_USD="5") as world:
        d = world.discord
        assert not d.slash("video", {"prompt": "a paper boat"}).wait_response().ephemeral
        world.wait_job_state("delivered", within=90)
        trial_usage = answer(d.slash("usage"))
        assert "4 of 5 left today" in trial_usage  # trial mode shows quotas working, on its own count
        assert "in simulated videos" in answer(d.slash("about"))

        world.bot.stop()
        world.bot.env["NOVITA_MODE"] = "live"
        world.restart_bot()

        usage = answer(d.slash("usage"))
        assert "5 of 5 left today" in usage
        assert "0 used" in usage
        assert "$5.00 of $5.00 left this month (the bot's default)" in usage
        about = answer(d.slash("about"))
        assert "Server budget: $0.00 of $5.00 a month used (the bot's default)." in about
        rules = answer(d.slash("quota", {}, subcommand="show", user=d.moderator))
        assert "$5.00 of $5.00 left this month (the bot's default)" in rules
        report = answer(d.slash("server-usage", {"period": "day"}, user=d.moderator))
        assert "0 videos · 0 made · 0 failed · 0 cancelled" in report
        assert "$0.00" in report
        assert "Simulated in trial mode (not billed, not counted above)" in report
        assert world.novita.submits == []

        assert not d.slash("video", {"prompt": "a real boat"}).wait_response().ephemeral
        world.wait_job_state("delivered", job_id=2)
        assert "4 of 5 left today" in answer(d.slash("usage"))
        assert "$4.72 of $5.00" in answer(d.slash("usage"))
