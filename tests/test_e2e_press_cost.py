"""What a press on a result costs, end to end: Regenerate, Edit & regenerate and Continue say it on their
labels, the modals say it with what the presser has left, and a press the presser's quota or the server's
budget can't pay for is refused before a modal opens or anything is read or spent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.fake_discord import Message
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # 3 credits a day; $0.80 a month: a 1080P video ($0.49, 2 credits) and a 768P one ($0.28, 1) fit.
    limits = {"DEFAULT_QUOTA_CREDITS": "3", "MONTHLY_BUDGET_USD": "0.80"}
    with running_world(tmp_path_factory.mktemp("cost"), **limits) as w:
        yield w
        assert "Traceback" not in w.bot.log()


def make(world: World, options: dict[str, Any]) -> Message:
    inter = world.discord.slash("video", options)
    return inter.wait_original(lambda m: m.attachments, timeout=40)


def labels(message: Message) -> dict[str, str]:
    out = {}
    for row in message.components:
        for comp in row.get("components", []):
            out[str(comp.get("custom_id")).split(":")[1]] = str(comp.get("label"))
    return out


def refusal(world: World, message: Message, custom_id: str, **kw: Any) -> str:
    response = world.discord.click(message, custom_id, **kw).wait_response()
    assert response.ephemeral, response
    assert response.type == 4  # an answer, not a modal
    return str((response.data or {}).get("content"))


def test_presses_show_their_cost_and_those_nobody_can_pay_are_refused_before_the_modal(world: World) -> None:
    d = world.discord
    big = make(world, {"prompt": "a harbour at dawn", "resolution": "1080P"})
    [job] = world.rows("SELECT id FROM jobs")
    job_id = int(job["id"])
    assert labels(big) == {
        "regen": "Regenerate · 2 credits", "edit": "Edit & regenerate · 2 credits",
        "cont": "Continue · 2 credits", "info": "Details", "del": "Delete",
    }  # fmt: skip

    # 1 credit left: the same 2-credit video again is refused at once, nothing read or submitted.
    submits = len(world.novita.submits)
    text = refusal(world, big, f"hailuo:regen:{job_id}")
    assert "needs 2 credits and you have 1 left" in text
    assert len(world.rows("SELECT id FROM jobs")) == 1
    assert len(world.novita.submits) == submits

    # Edit lets them choose a cheaper video, so the modal opens and says what it costs and what is left.
    edit = d.click(big, f"hailuo:edit:{job_id}")
    assert edit.wait_response().type == 9
    assert "As set: 2 credits · you have 1 of 3 left today" in json.dumps(edit.modal, ensure_ascii=False)

    small = make(world, {"prompt": "a harbour at noon"})
    assert labels(small)["regen"] == "Regenerate · 1 credit"

    # No credit left: Continue is refused before its modal, in one sentence saying when they come back.
    text = refusal(world, big, f"hailuo:cont:{job_id}")
    assert text.startswith("You've used all 3 of your credits today.")

    # Another member with credits: $0.77 of $0.80 is spent, so even the cheapest video would pass the budget.
    bob = d.add_member(None, "bob").user
    text = refusal(world, big, f"hailuo:edit:{job_id}", user=bob)
    assert "monthly video budget" in text
    assert "/quota budget" in text
    assert len(world.rows("SELECT id FROM jobs")) == 2
