"""/video end to end: the real bot process, the real discord.py client, fake Discord and fake Novita."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.novita import Timeline
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


def png(width: int = 640, height: int = 480) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path) as w:
        yield w


def status_lines(message) -> list[str]:  # noqa: ANN001
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
