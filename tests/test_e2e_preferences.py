"""/preferences end to end: the real bot against the fake Discord and the fake Novita. A member sets their
defaults with the real select presses, and what /video, a mention and "Animate image" send to Novita follows
them, while options given on the command win. Results also reach the member by DM when they asked for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_discord import Message
from tests.support.builders import png
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    free = {"DEFAULT_QUOTA_CREDITS": "-1", "USER_MAX_CONCURRENT": "50"}
    with running_world(tmp_path_factory.mktemp("prefs"), **free) as w:
        w.discord.wait_for_commands("video", "preferences")
        yield w
        log = w.bot.log()
        assert "Traceback" not in log


def open_preferences(world: World) -> Message:
    inter = world.discord.slash("preferences", {})
    response = inter.wait_response()
    assert response.ephemeral
    message = inter.original_message()
    assert message is not None
    return message


def choose(world: World, panel: Message, control: str, value: str, **kw: Any) -> str:
    """Pick `value` in the /preferences select `control`; the panel's text afterwards."""
    d = world.discord
    custom = f"hailuo:pref:{control}:{d.member.id}"
    press = d.select(panel, custom, [value], **kw)
    response = press.wait_response()
    if response.type != 7:  # not an update of the panel: a refusal
        return str((response.data or {}).get("content"))
    return d.message(panel.id).content


def sent_body(world: World, endpoint: str, before: int) -> dict[str, Any]:
    bodies = world.wait_for(
        lambda: len(world.novita.bodies.get(endpoint, [])) > before and world.novita.bodies[endpoint],
        what=f"a submit to {endpoint}",
    )
    return bodies[before]


def video(world: World, options: dict[str, Any], endpoint: str) -> dict[str, Any]:
    before = len(world.novita.bodies.get(endpoint, []))
    inter = world.discord.slash("video", options)
    assert not inter.wait_response().ephemeral, inter.wait_response().data
    return sent_body(world, endpoint, before)


def settings_of(body: dict[str, Any]) -> tuple[object, object, object]:
    return body["duration"], body["resolution"], body["enable_prompt_expansion"]


def test_preferences_set_with_the_selects_shape_what_video_sends_and_given_options_win(world: World) -> None:
    d = world.discord
    panel = open_preferences(world)
    assert "Duration: **6 seconds** (server default)" in panel.content
    assert "Results by DM too: **off**" in panel.content

    assert "Duration: **10 seconds**\n" in choose(world, panel, "duration", "10")
    assert "Model: **Hailuo 2.3**" in choose(world, panel, "model", "hailuo-2.3")
    text = choose(world, panel, "expansion", "off")
    assert "Prompt expansion: **off**" in text
    # 10 s with 1080P can't be made: refused in one sentence, nothing changes.
    text = choose(world, panel, "resolution", "1080P")
    assert "1080P videos are 6 seconds only" in text
    assert "Resolution: **768P** (server default)" in text
    [row] = world.rows("SELECT * FROM member_prefs WHERE user_id = ?", d.member.id)
    assert (row["duration"], row["resolution"], row["model"], row["prompt_expansion"]) == (
        10, None, "hailuo-2.3", 0,
    )  # fmt: skip

    body = video(world, {"prompt": "a lighthouse at dusk"}, "minimax-hailuo-2.3-t2v")
    assert settings_of(body) == (10, "768P", False)

    given = {"prompt": "a lighthouse at noon", "duration": 6, "resolution": "1080P", "prompt_expansion": True,
             "model": "hailuo-02"}  # fmt: skip
    body = video(world, given, "minimax-hailuo-02")
    assert settings_of(body) == (6, "1080P", True)

    # Only a resolution given: the 10-second preference gives way rather than the video being refused.
    body = video(world, {"prompt": "a lighthouse at night", "resolution": "1080P"}, "minimax-hailuo-2.3-t2v")
    assert settings_of(body) == (6, "1080P", False)

    # A mention's flags win too; what they leave out comes from the preferences.
    before = len(world.novita.bodies.get("minimax-hailuo-2.3-t2v", []))
    d.post_message(None, d.member, "gulls circling --duration 6", mentions=[d.bot_user])
    body = sent_body(world, "minimax-hailuo-2.3-t2v", before)
    assert settings_of(body) == (6, "768P", False)

    # Animate image opens with the member's defaults already chosen.
    source = d.post_message(None, d.member, "my boat", attachments=[("boat.png", png(800, 600), "image/png")])
    menu = d.context_menu("Animate image", source)
    assert menu.wait_response().type == 9
    modal = json.dumps(menu.modal)
    defaults = [o["value"] for o in _walk(menu.modal) if o.get("default")]
    assert defaults == ["10", "768P", "hailuo-2.3"], modal
    expansion = next(c for c in _components(menu.modal) if c.get("custom_id") == "expansion")
    assert expansion["default"] is False

    # Reset: back to the server defaults, and /video sends them.
    press = d.click(d.message(panel.id), f"hailuo:pref:reset:{d.member.id}")
    assert press.wait_response().type == 7
    assert "Back to the server defaults" in d.message(panel.id).content
    assert world.rows("SELECT * FROM member_prefs WHERE user_id = ?", d.member.id) == []
    body = video(world, {"prompt": "a lighthouse, plain"}, "minimax-hailuo-02")
    assert settings_of(body) == (6, "768P", True)


def _components(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "custom_id" in node:
            yield node
        for value in node.values():
            yield from _components(value)
    elif isinstance(node, list):
        for item in node:
            yield from _components(item)


def _walk(modal: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for component in _components(modal):
        yield from component.get("options") or []


def test_forged_presses_are_refused_and_change_nothing(world: World) -> None:
    d = world.discord
    panel = open_preferences(world)
    text = choose(world, panel, "duration", "8")  # a value no option offers
    assert "That choice isn't available" in text
    stranger = d.add_member(None, "stranger").user
    press = d.select(panel, f"hailuo:pref:model:{d.member.id}", ["hailuo-2.3"], user=stranger)
    response = press.wait_response()
    assert response.ephemeral
    assert "someone else's preferences" in str((response.data or {}).get("content"))
    assert world.rows("SELECT * FROM member_prefs WHERE user_id = ?", stranger.id) == []
    assert (
        world.rows("SELECT model FROM member_prefs WHERE user_id = ? AND model IS NOT NULL", d.member.id)
        == []
    )


def test_results_also_come_by_dm_as_a_link_and_a_refused_dm_changes_nothing(
    world: World, tmp_path: Path
) -> None:
    d = world.discord
    panel = open_preferences(world)
    press = d.click(panel, f"hailuo:pref:dm:{d.member.id}")
    assert press.wait_response().type == 7
    assert "Results by DM too: **on**" in d.message(panel.id).content

    inter = d.slash("video", {"prompt": "waves on the pier"})
    result = inter.wait_original(lambda m: bool(m.attachments), timeout=40)
    link = f"https://discord.com/channels/{result.guild_id}/{result.channel_id}/{result.id}"
    dm = world.wait_for(lambda: [m for m in d.dm_messages(d.member) if link in m.content], what="the DM link")
    assert not dm[0].attachments  # the video is uploaded once; the DM points to it

    d.refuse_dms(d.member)
    try:
        inter = d.slash("video", {"prompt": "waves at night"})
        inter.wait_original(lambda m: bool(m.attachments), timeout=40)
        [job] = world.rows("SELECT id, state FROM jobs ORDER BY id DESC LIMIT 1")
        assert world.settle(int(job["id"])) == "delivered"
        world.wait_for(lambda: "DM copy was refused" in world.bot.log(), what="the refused DM to be logged")
    finally:
        d.refuse_dms(d.member, refuse=False)


def test_the_preferences_panel_keeps_working_after_a_restart(world: World) -> None:
    d = world.discord
    panel = open_preferences(world)
    world.bot.stop()
    world.restart_bot()
    assert "Resolution: **1080P**\n" in choose(world, panel, "resolution", "1080P")
    [row] = world.rows("SELECT resolution FROM member_prefs WHERE user_id = ?", d.member.id)
    assert row["resolution"] == "1080P"
