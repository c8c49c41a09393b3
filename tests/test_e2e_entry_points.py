"""The "Animate image" context menu and the mention entry, end to end (real bot process, both fakes)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from bot.discord_side.app import INTENT_REFUSED
from cogs.mention import HIDDEN
from tests.fakes.fake_discord import Message
from tests.fakes.novita import FakeTask
from tests.fakes.server import LoopbackServer
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e

QUADRANTS = ((220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 210, 40))


def quadrant_png(width: int = 800, height: int = 600) -> bytes:
    """Four flat colours, so the first frame Novita received can be checked by its pixels."""
    img = Image.new("RGB", (width, height))
    for i, colour in enumerate(QUADRANTS):
        x, y = (i % 2) * width // 2, (i // 2) * height // 2
        img.paste(colour, (x, y, x + width // 2, y + height // 2))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def assert_is_quadrant_image(task: FakeTask, size: tuple[int, int] = (800, 600)) -> None:
    assert task.image is not None, "the task was created without an image"
    assert task.image_size == size
    img = Image.open(io.BytesIO(task.image)).convert("RGB")
    w, h = img.size
    for i, colour in enumerate(QUADRANTS):
        pixel = img.getpixel(((i % 2) * w // 2 + w // 4, (i // 2) * h // 2 + h // 4))
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True)), (i, pixel, colour)


def replies_to(message: Message) -> callable:  # type: ignore[valid-type]
    return lambda m: (m.message_reference or {}).get("message_id") == str(message.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path) as w:
        w.discord.wait_for_commands("video", "Animate image")
        yield w
        log = w.bot.log()
        assert "Traceback" not in log
        assert " ERROR " not in log


def test_animate_image_asks_for_a_prompt_and_replies_to_the_image(world: World) -> None:
    d = world.discord
    source = d.post_message(
        None, d.member, "my garden", attachments=[("garden.png", quadrant_png(), "image/png")]
    )
    menu = d.context_menu("Animate image", source)
    assert menu.wait_response().type == 9  # a modal
    labels = [c.get("label") for c in menu.modal["components"]]
    assert labels == ["Prompt", "Duration", "Resolution", "Prompt expansion", "Model"]

    submit = d.submit_modal(menu, {"prompt": "leaves fall slowly", "duration": ["10"], "expansion": False})
    card = submit.wait_original()
    assert not submit.ephemeral
    assert "leaves fall slowly" in card.text
    result = d.wait_for_message(lambda m: m.attachments and replies_to(source)(m), timeout=30)
    assert result.attachments[0].filename.endswith(".mp4")
    assert [u.id for u in result.mentions] == [d.member.id]  # the requester, nobody else

    body = world.novita.submits[0]["body"]
    assert (body["prompt"], body["duration"], body["enable_prompt_expansion"]) == (
        "leaves fall slowly",
        10,
        False,
    )
    assert_is_quadrant_image(next(iter(world.novita.tasks.values())))
    d.wait_for(lambda: "Done" in d.message(card.id).text, timeout=10, what="the card to say done")


def test_animate_image_without_an_image_explains_and_spends_nothing(world: World) -> None:
    d = world.discord
    plain = d.post_message(None, d.member, "just words")
    menu = d.context_menu("Animate image", plain)
    response = menu.wait_response()
    assert response.ephemeral
    assert "no image" in response.content
    gif = d.post_message(None, d.member, "", attachments=[("dance.gif", b"GIF89a" + b"\0" * 64, "image/gif")])
    response = d.context_menu("Animate image", gif).wait_response()
    assert response.ephemeral
    assert "GIF" in response.content
    assert world.novita.submits == []


def test_an_image_linked_off_discord_is_never_fetched(tmp_path: Path) -> None:
    """A link embed whose image has no Discord proxy copy: the bot must not fetch the link itself (it could
    point at any host, an internal one included). The content intent is on, so the mention sees the link."""
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=quadrant_png(), content_type="image/png")

    elsewhere = web.Application()
    elsewhere.router.add_get("/{tail:.*}", anything)
    with (
        LoopbackServer(elsewhere) as other,
        running_world(
            tmp_path,
            MESSAGE_CONTENT_INTENT="true",
            discord_options={"privileged_intents": ["message_content"]},
        ) as world,
    ):
        d = world.discord
        link = f"{other.url}/internal/cat.png"
        image = {"url": link, "proxy_url": "", "width": 800, "height": 600}
        message = d.post_message(
            None, d.member, link, embeds=[{"type": "image", "url": link, "image": image}]
        )
        response = d.context_menu("Animate image", message).wait_response()
        assert response.ephemeral
        assert "isn't stored on Discord" in response.content
        mention = d.post_message(None, d.member, "make it move", mentions=[d.bot_user], reference=message)
        reply = d.wait_for_message(lambda m: m.author.bot and replies_to(mention)(m), timeout=10)
        assert "isn't stored on Discord" in reply.text
    assert hits == []
    assert world.novita.submits == []


def test_an_image_linked_through_discords_proxy_is_used(world: World) -> None:
    d = world.discord
    copy = d.upload("cat.png", quadrant_png(), "image/png")
    image = {
        "url": "https://example.invalid/cat.png",
        "proxy_url": copy.proxy_url,
        "width": 800,
        "height": 600,
    }
    message = d.post_message(None, d.member, "look", embeds=[{"type": "image", "image": image}])
    menu = d.context_menu("Animate image", message)
    assert menu.wait_response().type == 9
    d.submit_modal(menu, {"prompt": "the cat blinks"}).wait_original()
    d.wait_for_message(lambda m: m.attachments and replies_to(message)(m), timeout=30)
    assert_is_quadrant_image(next(iter(world.novita.tasks.values())))


def test_mention_without_image_is_text_to_video_and_replies_alone_do_nothing(world: World) -> None:
    d = world.discord
    bot_note = d.post_message(None, d.owner, "", mentions=[d.bot_user])  # no prompt: a hint
    hint = d.wait_for_message(replies_to(bot_note), timeout=10)
    assert "Tell me what should happen" in hint.content
    silent = d.post_message(None, d.member, "thanks!", reference=hint)  # a reply to the bot, no mention
    bad = d.post_message(None, d.member, "waves --duration 10 --resolution 1080P", mentions=[d.bot_user])
    refusal = d.wait_for_message(replies_to(bad), timeout=10)
    assert "1080P is only available for 6-second videos" in refusal.content
    assert refusal.mentions == []

    ask = d.post_message(None, d.member, "a paper plane over <@999> city", mentions=[d.bot_user])
    d.wait_for_message(lambda m: m.attachments and replies_to(ask)(m), timeout=30)
    assert len(world.novita.submits) == 1
    body = world.novita.submits[0]["body"]
    assert body["prompt"] == "a paper plane over @someone city"
    assert "image" not in body
    assert "image_url" not in body
    time.sleep(0.3)
    assert not [m for m in d.bot_messages() if replies_to(silent)(m)]


CONTENT_INTENT = 1 << 15


def clean_log(world: World) -> None:
    log = world.bot.log()
    assert "Traceback" not in log
    assert " ERROR " not in log


def about_text(world: World) -> str:
    response = world.discord.slash("about").wait_response()
    return json.dumps(response.data, ensure_ascii=False)


def test_with_the_content_intent_a_reply_to_anyones_image_uses_it(tmp_path: Path) -> None:
    """MESSAGE_CONTENT_INTENT=true and the portal's toggle on: a mention replying to another member's image
    (an attachment, or an image embed served through Discord's media proxy) animates that image, the text
    after the mention is the prompt, and the result replies to the message the image came from."""
    with running_world(
        tmp_path, MESSAGE_CONTENT_INTENT="true", discord_options={"privileged_intents": ["message_content"]}
    ) as world:
        d = world.discord
        assert d.intents is not None
        assert d.intents & CONTENT_INTENT
        photo = d.post_message(None, d.owner, "", attachments=[("photo.png", quadrant_png(), "image/png")])
        ask = d.post_message(
            None,
            d.member,
            "the sun sets --duration 10 --no-expansion",
            mentions=[d.bot_user],
            reference=photo,
        )
        card = d.wait_for_message(lambda m: replies_to(ask)(m) and m.embeds, timeout=10)
        assert "the sun sets" in card.text
        assert card.mentions == []  # the card pings nobody
        result = d.wait_for_message(lambda m: m.attachments and replies_to(photo)(m), timeout=30)
        assert result.attachments[0].filename.endswith(".mp4")
        assert [u.id for u in result.mentions] == [d.member.id]
        body = world.novita.submits[0]["body"]
        assert (body["prompt"], body["duration"], body["resolution"], body["enable_prompt_expansion"]) == (
            "the sun sets",
            10,
            "768P",
            False,
        )
        assert_is_quadrant_image(next(iter(world.novita.tasks.values())))

        hosted = d.world.register_attachment("beach.png", quadrant_png(), content_type="image/png")
        link = "https://images.example/beach.png"
        embed = {
            "type": "image",
            "url": link,
            "thumbnail": {"url": link, "proxy_url": hosted.proxy_url, "width": 800, "height": 600},
        }
        linked = d.post_message(None, d.owner, link, embeds=[embed])
        ask = d.post_message(None, d.moderator, "waves roll in", mentions=[d.bot_user], reference=linked)
        d.wait_for_message(lambda m: m.attachments and replies_to(linked)(m), timeout=30)
        assert [s["body"]["prompt"] for s in world.novita.submits] == ["the sun sets", "waves roll in"]
        assert_is_quadrant_image(world.novita.tasks[world.novita.submits[1]["task_id"]])

        assert "attaching an image or replying to one" in about_text(world)
        clean_log(world)


def test_without_the_content_intent_a_hidden_reply_target_is_explained(tmp_path: Path) -> None:
    """As on real Discord without the intent (the default): the message a member replies to arrives blank
    unless it is the bot's own or mentions the bot. A blank one gets one sentence naming both ways out; the
    others' images are used, and so is an image attached to the mention itself."""
    with running_world(tmp_path) as world:
        d = world.discord
        assert d.intents is not None
        assert not d.intents & CONTENT_INTENT
        photo = d.post_message(None, d.owner, "", attachments=[("photo.png", quadrant_png(), "image/png")])
        ask = d.post_message(None, d.member, "the sun sets", mentions=[d.bot_user], reference=photo)
        answer = d.wait_for_message(replies_to(ask), timeout=10)
        assert answer.content == str(HIDDEN)
        assert answer.mentions == []

        own = d.post_message(
            None, d.member, "the sun rises", mentions=[d.bot_user],
            attachments=[("photo.png", quadrant_png(), "image/png")],
        )  # fmt: skip
        d.wait_for_message(lambda m: m.attachments and replies_to(own)(m), timeout=30)

        # A message that mentions the bot arrives whole: here an image posted with no prompt yet.
        tagged = d.post_message(
            None, d.owner, "", mentions=[d.bot_user], attachments=[("tag.png", quadrant_png(), "image/png")]
        )
        hint = d.wait_for_message(replies_to(tagged), timeout=10)
        assert "Tell me what should happen" in hint.content
        ask = d.post_message(None, d.member, "petals drift", mentions=[d.bot_user], reference=tagged)
        d.wait_for_message(lambda m: m.attachments and replies_to(tagged)(m), timeout=30)

        # So does the bot's own message.
        mine = d.post_message(None, d.bot_user, "", attachments=[("mine.png", quadrant_png(), "image/png")])
        ask = d.post_message(None, d.moderator, "clouds part", mentions=[d.bot_user], reference=mine)
        d.wait_for_message(lambda m: m.attachments and replies_to(mine)(m), timeout=30)

        prompts = [s["body"]["prompt"] for s in world.novita.submits]
        assert prompts == ["the sun rises", "petals drift", "clouds part"]
        for task in world.novita.tasks.values():
            assert_is_quadrant_image(task)
        assert "use Animate image instead" in about_text(world)
        clean_log(world)


def test_asking_for_a_content_intent_discord_refuses_stops_with_one_sentence(tmp_path: Path) -> None:
    """MESSAGE_CONTENT_INTENT=true while the portal's toggle is off: Discord closes the gateway with 4014;
    the bot exits non-zero with one sentence saying where to turn the intent on, and `check --online`
    reports the missing intent as a problem."""
    with running_world(tmp_path, start=False, MESSAGE_CONTENT_INTENT="true") as world:

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "bot", *args], cwd=tmp_path, env=world.bot.env,
                capture_output=True, text=True, timeout=90,
            )  # fmt: skip

        started = run()
        assert started.returncode == 2, started.stdout + started.stderr
        assert INTENT_REFUSED in started.stderr.splitlines()
        assert "Traceback" not in started.stdout + started.stderr
        assert 4014 in [e.detail["code"] for e in world.discord.gateway.log if e.kind == "closed"]

        checked = run("check", "--online")
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert (
            "problem    MESSAGE_CONTENT_INTENT=true, but the application doesn't have the Message Content "
            "intent, so Discord would refuse the start." in checked.stderr
        )
        assert "Privileged Gateway Intents → Message Content Intent" in checked.stderr
        assert "Traceback" not in checked.stdout + checked.stderr
