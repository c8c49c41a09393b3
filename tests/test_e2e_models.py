"""Every Hailuo model and both frames, end to end: the real bot process against the fake Discord and the fake
Novita, which serves each model's endpoint with the validation Novita documents and records every body."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.fake_discord import Interaction, Message
from tests.fakes.novita import FakeTask, Timeline
from tests.fakes.videos import make_video
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e

RED, BLUE = (220, 40, 40), (40, 70, 220)
REFUSALS_FREE = {"DEFAULT_QUOTA_CREDITS": "-1", "USER_MAX_CONCURRENT": "50"}


def picture(width: int = 800, height: int = 600, colour: tuple[int, int, int] = RED) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def colour_of(data: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").getpixel((img.width // 2, img.height // 2))  # type: ignore[return-value]


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 16) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def data_uri_bytes(uri: str) -> bytes:
    assert uri.startswith("data:image/jpeg;base64,"), uri[:40]
    return base64.b64decode(uri.split(",", 1)[1])


def elided(body: dict[str, Any]) -> dict[str, Any]:
    """A submit body with its data URIs cut short, for reading and for the record."""
    return {
        k: (f"{v[:23]}…({len(v)} chars)" if isinstance(v, str) and v.startswith("data:") else v)
        for k, v in body.items()
    }


def record_bodies(world: World, name: str) -> None:
    """With HAILUO_RECORD_BODIES=dir, keep the elided bodies the fake received, per endpoint."""
    folder = os.environ.get("HAILUO_RECORD_BODIES")
    if folder:
        bodies = {endpoint: [elided(b) for b in got] for endpoint, got in world.novita.bodies.items()}
        Path(folder, f"{name}.json").write_text(json.dumps(bodies, indent=2, ensure_ascii=False))


def done(inter: Interaction, timeout: float = 40) -> Message:
    return inter.wait_original(lambda m: m.attachments or "❌" in str(m.embeds), timeout=timeout)


def refused(world: World, options: dict[str, Any], attachments: dict[str, Any] | None = None) -> str:
    inter = world.discord.slash("video", options, attachments=attachments)
    response = inter.wait_response()
    assert response.ephemeral, response.data
    return str((response.data or {}).get("content"))


def replies_to(message: Message, target: Message) -> bool:
    return (message.message_reference or {}).get("message_id") == str(target.id)


def only_task(world: World, before: set[str]) -> FakeTask:
    [task_id] = set(world.novita.tasks) - before
    return world.novita.tasks[task_id]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("models"), **REFUSALS_FREE) as w:
        yield w
        log = w.bot.log()
        assert "Traceback" not in log


CASES = [
    ("hailuo-02", False, "minimax-hailuo-02", "Hailuo-02"),
    ("hailuo-02", True, "minimax-hailuo-02", "Hailuo-02"),
    ("hailuo-2.3", False, "minimax-hailuo-2.3-t2v", "Hailuo 2.3"),
    ("hailuo-2.3", True, "minimax-hailuo-2.3-i2v", "Hailuo 2.3"),
    ("hailuo-2.3-fast", True, "minimax-hailuo-2.3-fast-i2v", "Hailuo 2.3 Fast"),
]


@pytest.mark.parametrize(
    ("model", "with_image", "endpoint", "name"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_each_model_goes_to_its_endpoint_with_the_fields_novita_documents(
    world: World, model: str, with_image: bool, endpoint: str, name: str
) -> None:
    before = set(world.novita.tasks)
    sent = len(world.novita.bodies.get(endpoint, []))
    attachments = {"image": ("start.png", picture(), "image/png")} if with_image else None
    inter = world.discord.slash(
        "video", {"prompt": f"a fox, {model}", "model": model}, attachments=attachments
    )
    card = done(inter)
    assert card.attachments, str(card.embeds)
    assert f"MiniMax {name}" in str(card.embeds[0])  # the card names the model
    body = world.novita.bodies[endpoint][sent]
    assert body["prompt"] == f"a fox, {model}"
    assert (body["duration"], body["resolution"], body["enable_prompt_expansion"]) == (6, "768P", True)
    assert "end_image" not in body
    assert "image_url" not in body  # never a data URI there; off by default
    task = only_task(world, before)
    assert task.endpoint == endpoint
    if with_image:
        assert task.image_format == "JPEG"
        assert near(colour_of(data_uri_bytes(body["image"])), RED)
    else:
        assert "image" not in body
    [row] = world.rows("SELECT model, credits, cost_usd FROM jobs WHERE task_id = ?", task.task_id)
    assert row == {"model": model, "credits": 1, "cost_usd": 0.28}  # Hailuo-02's prices until set
    record_bodies(world, "models")


def test_the_last_frame_goes_as_end_image_and_regenerate_keeps_both_frames(
    world: World, tmp_path: Path
) -> None:
    d = world.discord
    video = make_video(tmp_path / "moving.mp4", seconds=2, size=(640, 480))  # its last frame is usable
    before = set(world.novita.tasks)
    frames = {
        "image": ("first.png", picture(800, 600, RED), "image/png"),
        "last_frame": ("last.png", picture(1200, 600, BLUE), "image/png"),  # 2:1 against 4:3
    }
    world.novita.script(Timeline(queued_s=0.3, processing_s=1.0, video=video))
    inter = d.slash("video", {"prompt": "red turns blue"}, attachments=frames)
    result = done(inter)
    assert result.attachments
    assert "first → last frame" in str(result.embeds[0])
    warning = world.wait_for(lambda: [f for f in inter.followups if f.ephemeral], what="the aspect warning")
    assert "different shape" in warning[0].content
    assert warning[0].content.count(". ") == 0  # one sentence
    task = only_task(world, before)
    body = world.novita.bodies["minimax-hailuo-02"][-1]
    assert near(colour_of(data_uri_bytes(body["image"])), RED)
    assert near(colour_of(data_uri_bytes(body["end_image"])), BLUE)
    assert task.end_image is not None
    [job] = world.rows(
        "SELECT id, last_frame_name, last_frame_path FROM jobs WHERE task_id = ?", task.task_id
    )
    assert job["last_frame_name"] == "last.png"

    details = d.click(result, f"hailuo:info:{job['id']}").wait_response()
    assert "first → last frame" in str(details.data.get("embeds"))
    assert "Hailuo-02" in str(details.data.get("embeds"))

    before = set(world.novita.tasks)
    regen = d.click(result, f"hailuo:regen:{job['id']}")
    assert not regen.wait_response().ephemeral
    assert world.settle(job["id"] + 1) == "delivered"
    body_again = world.novita.bodies["minimax-hailuo-02"][-1]
    assert body_again["image"] == body["image"]
    assert body_again["end_image"] == body["end_image"]
    assert only_task(world, before).end_image is not None

    # Continue: the video's last frame becomes the first frame; no last frame is carried over.
    cont = d.click(result, f"hailuo:cont:{job['id']}")
    assert cont.wait_response().type == 9
    assert "model" in json.dumps(cont.modal)
    before = set(world.novita.tasks)
    following = d.submit_modal(cont, {"prompt": "and then it rains", "model": ["hailuo-2.3-fast"]})
    assert not following.wait_response().ephemeral
    assert world.settle(job["id"] + 2) == "delivered"
    continued = world.novita.bodies["minimax-hailuo-2.3-fast-i2v"][-1]
    assert "end_image" not in continued
    assert continued["image"] != body["image"]
    assert only_task(world, before).endpoint == "minimax-hailuo-2.3-fast-i2v"
    record_bodies(world, "frames")


def test_choices_a_model_cant_serve_are_refused_before_anything_is_spent(world: World) -> None:
    submits = len(world.novita.submits)
    jobs = len(world.rows("SELECT id FROM jobs"))
    first = {"image": ("first.png", picture(), "image/png")}
    last = {"last_frame": ("last.png", picture(colour=BLUE), "image/png")}
    text = refused(world, {"prompt": "x"}, last)
    assert text.startswith("A last frame needs a first frame too")
    text = refused(world, {"prompt": "x", "model": "hailuo-2.3"}, {**first, **last})
    assert text.startswith("Hailuo 2.3 can't use a last frame")
    text = refused(world, {"prompt": "x", "model": "hailuo-2.3-fast"})
    assert text.startswith("Hailuo 2.3 Fast needs an image")
    bad_last = {"last_frame": ("tiny.png", picture(200, 200), "image/png")}
    text = refused(world, {"prompt": "x"}, {**first, **bad_last})
    assert text.startswith("Last frame:")
    assert "300 px" in text
    crafted = world.discord.slash("video", {"prompt": "x", "model": "hailuo-9"}, strict=False)
    assert crafted.wait_response().ephemeral
    assert "There is no model called" in crafted.response.content
    assert len(world.novita.submits) == submits
    assert len(world.rows("SELECT id FROM jobs")) == jobs


def test_the_mention_flag_picks_the_model(world: World) -> None:
    d = world.discord
    me = d.bot_user
    sent = len(world.novita.bodies.get("minimax-hailuo-2.3-t2v", []))
    message = d.post_message(None, d.member, f"<@{me.id}> a lantern festival --model hailuo-2.3")
    d.wait_for_message(lambda m: bool(m.attachments) and replies_to(m, message), timeout=40)
    assert world.novita.bodies["minimax-hailuo-2.3-t2v"][sent]["prompt"] == "a lantern festival"
    bad = d.post_message(None, d.member, f"<@{me.id}> a lantern --model hailuo-2.3-fast")
    reply = d.wait_for_message(lambda m: replies_to(m, bad))
    assert reply.content.startswith("Hailuo 2.3 Fast needs an image")


def test_animate_image_offers_the_models_in_its_modal(world: World) -> None:
    d = world.discord
    source = d.post_message(None, d.member, "my cat", attachments=[("cat.png", picture(), "image/png")])
    menu = d.context_menu("Animate image", source)
    assert menu.wait_response().type == 9
    assert [c.get("label") for c in menu.modal["components"]][-1] == "Model"
    sent = len(world.novita.bodies.get("minimax-hailuo-2.3-i2v", []))
    submit = d.submit_modal(menu, {"prompt": "the cat yawns", "model": ["hailuo-2.3"]})
    assert not submit.wait_response().ephemeral
    d.wait_for_message(lambda m: bool(m.attachments) and replies_to(m, source), timeout=40)
    body = world.novita.bodies["minimax-hailuo-2.3-i2v"][sent]
    assert body["prompt"] == "the cat yawns"
    assert near(colour_of(data_uri_bytes(body["image"])), RED)


def test_moderators_choose_the_servers_models_and_members_see_them_with_their_costs(tmp_path: Path) -> None:
    costs = {"MODEL_CREDIT_TABLE": "hailuo-2.3:768P/6=3", "MODEL_PRICE_TABLE": "hailuo-2.3:768P/6=0.5"}
    with running_world(tmp_path, DEFAULT_QUOTA_CREDITS="10", **costs) as world:
        d = world.discord
        about = d.slash("about")
        text = json.dumps(about.wait_response().data, ensure_ascii=False)
        for name in ("Hailuo-02", "Hailuo 2.3", "Hailuo 2.3 Fast"):
            assert f"**{name}**" in text
        assert "**Hailuo 2.3** — 6 s 768P: 3 credits" in text

        off = d.slash(
            "settings", {"model": "hailuo-2.3", "allowed": False}, subcommand="models", user=d.moderator
        )
        off.wait_response()
        assert "Hailuo-02, Hailuo 2.3 Fast" in off.wait_original(lambda m: not m.loading).text
        text = refused(world, {"prompt": "x", "model": "hailuo-2.3"})
        assert text.startswith("This server doesn't allow Hailuo 2.3.")
        usage = d.slash("usage")
        shown = json.dumps(usage.wait_response().data, ensure_ascii=False)
        assert "**Hailuo 2.3 Fast**" in shown
        assert "**Hailuo 2.3**" not in shown
        listing = d.slash("settings", {}, subcommand="models", user=d.moderator)
        listing.wait_response()
        assert "switched off" in listing.wait_original(lambda m: not m.loading).text

        on = d.slash(
            "settings", {"model": "hailuo-2.3", "allowed": True}, subcommand="models", user=d.moderator
        )
        on.wait_response()
        card = done(d.slash("video", {"prompt": "a comet", "model": "hailuo-2.3"}))
        assert card.attachments
        [row] = world.rows("SELECT model, credits, cost_usd FROM jobs")
        assert row == {"model": "hailuo-2.3", "credits": 3, "cost_usd": 0.5}
        assert "7 of 10 left" in str(card.embeds[0])

        last = d.slash(
            "settings", {"model": "hailuo-02", "allowed": False}, subcommand="models", user=d.moderator
        )
        last.wait_response()
        for key in ("hailuo-2.3", "hailuo-2.3-fast"):
            d.slash("settings", {"model": key, "allowed": False}, subcommand="models", user=d.moderator)
        final = d.slash("settings", {"model": "hailuo-2.3-fast", "allowed": False}, subcommand="models",
                        user=d.moderator)  # fmt: skip
        final.wait_response()
        assert "At least one model must stay on" in final.wait_original(lambda m: not m.loading).text

        report = d.slash("server-usage", {"period": "day", "csv": True}, user=d.moderator)
        report.wait_response()
        answer = report.wait_original(lambda m: not m.loading)
        assert "By model" in answer.text
        assert "Hailuo 2.3 — 1 video" in answer.text
        csv_text = d.cdn_bytes(answer.attachments[0]).decode("utf-8-sig")
        assert csv_text.splitlines()[0].endswith(",model,last_frame,simulated")
        assert csv_text.splitlines()[1].endswith(",hailuo-2.3,no,no")
