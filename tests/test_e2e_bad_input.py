"""Bad input from members: odd prompts, hostile images, and option values crafted outside Discord's choices.
None crashes the bot, none spends anything, each gets a clear answer."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.builders import png
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path, DEFAULT_QUOTA_CREDITS="-1", USER_MAX_CONCURRENT="50") as w:
        yield w


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG that claims to be enormous: the header says 30000×30000, the data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (640, 480), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def ask(
    world: World, options: dict, attachments: dict | None = None, strict: bool = False
) -> tuple[bool, str]:
    inter = world.discord.slash("video", options, attachments=attachments, strict=strict)
    response = inter.wait_response()
    return response.ephemeral, (response.data or {}).get("content") or str(
        (response.data or {}).get("embeds")
    )


def states(world: World) -> list[str]:
    return [state for (state,) in world.values("SELECT state FROM jobs ORDER BY id")]


def test_prompts_at_the_edges(world: World) -> None:
    ephemeral, text = ask(world, {"prompt": ""})
    assert ephemeral
    assert "empty" in text
    ephemeral, text = ask(world, {"prompt": "\u200b\u200d\u2060 \u200b"})  # zero-width only
    assert ephemeral
    assert "empty" in text
    ephemeral, text = ask(world, {"prompt": "x" * 2001})
    assert ephemeral
    assert "2000" in text
    assert world.novita.submits == []
    for prompt in (
        "x",
        "y" * 2000,
        "🦊 un renard dans la neige — 雪の中の狐",
        "@everyone @here <@&1> <@1> hi",
    ):
        ephemeral, _ = ask(world, {"prompt": prompt}, strict=True)
        assert not ephemeral, prompt
    world.discord.wait_for(lambda: len(world.novita.submits) == 4, timeout=20)
    sent = [s["body"]["prompt"] for s in world.novita.submits]
    assert "y" * 2000 in sent
    assert "🦊 un renard dans la neige — 雪の中の狐" in sent


def test_hostile_images_are_refused_before_anything_is_spent(world: World) -> None:
    truncated = png(800, 600)[:400]
    cases = {
        "corrupt": ("a.png", b"\x89PNG\r\n\x1a\nthis is not a png at all" * 10, "image/png"),
        "truncated": ("b.png", truncated, "image/png"),
        "bomb": ("c.png", png_bomb(), "image/png"),
        "wrong type under an image name": ("d.jpg", b"%PDF-1.4 not an image" * 20, "image/jpeg"),
        "too thin": ("e.png", png(1, 1000), "image/png"),
    }
    for name, spec in cases.items():
        inter = world.discord.slash("video", {"prompt": "move"}, attachments={"image": spec})
        response = inter.wait_response()
        if response.ephemeral:  # refused from the metadata at once
            continue
        card = inter.wait_original(lambda m: "❌" in str(m.embeds), timeout=20)  # refused on the real bytes
        assert "credits were returned" in str(card.embeds[0]), name
    assert world.novita.submits == []
    assert all(state == "failed" for state in states(world))
    # An animated image is fine: its first frame is used.
    inter = world.discord.slash(
        "video", {"prompt": "move"}, attachments={"image": ("anim.webp", animated_webp(), "image/webp")}
    )
    inter.wait_original(lambda m: m.attachments, timeout=30)
    assert world.bot.alive()


def test_options_crafted_outside_discords_choices(world: World) -> None:
    for options, expected in (
        ({"prompt": "x", "duration": 7}, "6 or 10"),
        ({"prompt": "x", "resolution": "4K"}, "768P or 1080P"),
        ({"prompt": "x", "camera": "Barrel roll"}, "camera move"),
    ):
        ephemeral, text = ask(world, options)
        assert ephemeral, options
        assert expected in text, text
    assert world.novita.submits == []
    assert states(world) == []
