"""The result buttons and the job card's Cancel, end to end: real bot process, fake Discord, fake Novita."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.fakes.fake_discord import Message
from tests.fakes.novita import Timeline
from tests.fakes.videos import ffmpeg, make_video
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e

RESULT_BUTTONS = ["hailuo:{a}:{id}".format(a=a, id="{id}") for a in ("regen", "edit", "cont", "info", "del")]


def result_ids(job_id: int) -> list[str]:
    return [b.format(id=job_id) for b in RESULT_BUTTONS]


def picture(width: int = 800, height: int = 600) -> bytes:
    img = Image.new("RGB", (width, height), (30, 120, 200))
    img.paste((240, 200, 30), (0, 0, width // 2, height // 2))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def embed_text(response: Any) -> str:
    return str(response.data.get("embeds"))


def forge(message: Message, old: str, new: str) -> None:
    """A modified client: a button whose custom id the bot never sent."""
    for row in message.components:
        for comp in row.get("components", []):
            if comp.get("custom_id") == old:
                comp["custom_id"] = new


def test_buttons_work_after_a_restart_and_charge_whoever_presses(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        bob = d.add_member(None, "bob").user
        image = {"image": ("sea.png", picture(), "image/png")}
        first = d.slash("video", {"prompt": "a lighthouse at night"}, attachments=image)
        result = first.wait_original(lambda m: m.attachments, timeout=30)
        assert result.custom_ids() == result_ids(1)
        edit = d.click(result, "hailuo:edit:1")  # a modal left open across the restart
        assert edit.wait_response().type == 9

        world.bot.stop()
        world.restart_bot()

        details = d.click(result, "hailuo:info:1", user=bob).wait_response()
        assert details.ephemeral
        task_id = next(iter(world.novita.tasks))
        assert task_id in embed_text(details)
        assert "a lighthouse at night" in embed_text(details)

        regen = d.click(result, "hailuo:regen:1", user=bob)
        card = regen.wait_response()
        assert not card.ephemeral
        second = regen.wait_original(lambda m: m.attachments, timeout=30)
        assert second.custom_ids() == result_ids(2)
        assert [u.id for u in second.mentions] in ([], [bob.id])

        assert world.values("SELECT user_id, entry, parent_job_id, prompt FROM jobs WHERE id = 2") == [
            (bob.id, "regenerate", 1, "a lighthouse at night")
        ]
        ledger = world.values("SELECT job_id, user_id, kind FROM ledger ORDER BY id")
        assert (2, bob.id, "reserve") in ledger
        assert (2, bob.id, "charge") in ledger
        assert not [r for r in ledger if r[0] == 2 and r[1] != bob.id]
        tasks = list(world.novita.tasks.values())
        assert [t.image_size for t in tasks] == [(800, 600), (800, 600)]  # the same first frame again

        edited = d.submit_modal(edit, {"prompt": "a lighthouse in fog"})
        assert not edited.wait_response().ephemeral
        assert world.values("SELECT user_id, entry, prompt FROM jobs WHERE id = 3") == [
            (d.member.id, "edit", "a lighthouse in fog")
        ]
        card = edited.wait_original()
        d.wait_for(lambda: world.values("SELECT card_message_id FROM jobs WHERE id = 3") == [(card.id,)],
                   timeout=5, what="the new card stored")  # fmt: skip
        assert world.bot.log().count("===== start") == 2
        assert "Traceback" not in world.bot.log()


def test_delete_is_for_the_requester_or_a_moderator_and_forged_ids_are_refused(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        bob = d.add_member(None, "bob").user
        result = d.slash("video", {"prompt": "a kite"}).wait_original(lambda m: m.attachments, timeout=30)

        refusal = d.click(result, "hailuo:del:1", user=bob).wait_response()
        assert refusal.ephemeral
        assert "Only the member who asked for video #1, or a moderator, can delete it." in refusal.content

        regen = d.click(result, "hailuo:regen:1", user=bob)  # bob's own job #2, to forge a Delete with
        regen.wait_response()
        bobs = regen.wait_original(lambda m: m.attachments, timeout=30)
        assert bobs.id != result.id
        forge(result, "hailuo:del:1", "hailuo:del:2")
        forge(result, "hailuo:info:1", "hailuo:info:999")
        forge(result, "hailuo:edit:1", "hailuo:edit:abc")
        answers = {
            custom_id: d.click(result, custom_id, user=bob).wait_response().content
            for custom_id in ("hailuo:del:2", "hailuo:info:999", "hailuo:edit:abc")
        }
        assert answers == {
            "hailuo:del:2": "That button doesn't belong to this message.",
            "hailuo:info:999": "That video isn't known in this server. It may be from another server, or the "
            "button is broken.",
            "hailuo:edit:abc": "That button isn't valid any more.",
        }
        assert not d.message(result.id).deleted
        forge(result, "hailuo:del:2", "hailuo:del:1")

        d.click(bobs, "hailuo:del:2", user=d.moderator).wait_response()
        d.wait_for(lambda: d.message(bobs.id).deleted, timeout=5, what="the moderator's delete")
        d.click(result, "hailuo:del:1").wait_response()
        d.wait_for(lambda: d.message(result.id).deleted, timeout=5, what="the requester's delete")
        assert "Traceback" not in world.bot.log()


def test_edit_and_regenerate_opens_a_prefilled_modal(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        bob = d.add_member(None, "bob").user
        first = d.slash("video", {"prompt": "a red kite", "camera": "Pan left", "duration": 10})
        result = first.wait_original(lambda m: m.attachments, timeout=30)
        edit = d.click(result, "hailuo:edit:1", user=bob)
        assert edit.wait_response().type == 9
        prompt_input = edit.modal["components"][0]["component"]
        assert prompt_input["value"] == "a red kite [Pan left]"

        submit = d.submit_modal(edit, {"prompt": "a blue kite [Pan right]", "duration": ["6"],
                                       "resolution": ["1080P"]})  # fmt: skip
        assert not submit.wait_response().ephemeral
        d.wait_for(lambda: len(world.novita.submits) == 2, timeout=10, what="the second submit")
        body = world.novita.submits[1]["body"]
        assert (body["prompt"], body["duration"], body["resolution"], body["enable_prompt_expansion"]) == (
            "a blue kite [Pan right]", 6, "1080P", True,
        )  # fmt: skip
        assert world.values("SELECT user_id, entry, parent_job_id, camera FROM jobs WHERE id = 2") == [
            (bob.id, "edit", 1, None)
        ]


def frame_of(video: bytes, tmp: Path, last: bool) -> Image.Image:
    src, out = tmp / "delivered.mp4", tmp / ("last.png" if last else "first.png")
    src.write_bytes(video)
    seek = ["-sseof", "-0.5"] if last else []
    count = [] if last else ["-frames:v", "1"]
    subprocess.run(
        [ffmpeg(), "-loglevel", "error", "-y", *seek, "-i", str(src), *count, "-update", "1", str(out)],
        check=True,
    )
    return Image.open(out).convert("RGB")


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_continue_starts_from_the_last_frame(tmp_path: Path) -> None:
    video = make_video(tmp_path / "moving.mp4", seconds=2, size=(640, 480))  # a moving test pattern
    with running_world(tmp_path, timeline=Timeline(queued_s=0.2, processing_s=0.6, video=video)) as world:
        d = world.discord
        result = d.slash("video", {"prompt": "a clock"}).wait_original(lambda m: m.attachments, timeout=30)
        cont = d.click(result, "hailuo:cont:1")
        assert cont.wait_response().type == 9
        submit = d.submit_modal(cont, {"prompt": "the clock melts"})
        assert not submit.wait_response().ephemeral
        submit.wait_original(lambda m: m.attachments, timeout=30)

        delivered = d.cdn_bytes(result.attachments[0])
        received = list(world.novita.tasks.values())[1]
        assert received.image is not None
        assert received.image_size == (640, 480)
        got = Image.open(io.BytesIO(received.image)).convert("RGB")
        assert mean_difference(got, frame_of(delivered, tmp_path, last=True)) < 4
        assert mean_difference(got, frame_of(delivered, tmp_path, last=False)) > 10  # a meaningful check
        assert world.novita.submits[1]["body"]["prompt"] == "the clock melts"
        assert world.values("SELECT entry, parent_job_id FROM jobs WHERE id = 2") == [("continue", 1)]


def test_continue_refuses_plainly_when_the_video_is_gone(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        result = d.slash("video", {"prompt": "a clock"}).wait_original(lambda m: m.attachments, timeout=30)
        for video in (tmp_path / "data" / "media" / "videos").glob("*.mp4"):
            video.unlink()
        refusal = d.click(result, "hailuo:cont:1").wait_response()
        assert refusal.ephemeral
        assert refusal.content.startswith("Video #1 is no longer kept")
        assert len(world.novita.submits) == 1


def test_cancel_a_queued_job_from_its_card_refunds(tmp_path: Path) -> None:
    slow = Timeline(queued_s=0.2, processing_s=60)
    with running_world(tmp_path, timeline=slow, NOVITA_MAX_IN_FLIGHT="1") as world:
        d = world.discord
        bob = d.add_member(None, "bob").user
        first = d.slash("video", {"prompt": "the long one"})
        first_card = first.wait_original()
        d.wait_for(lambda: len(world.novita.submits) == 1, timeout=10, what="the first submit")
        second = d.slash("video", {"prompt": "waits its turn"})
        card = second.wait_original(
            lambda m: "Waiting in line" in m.text and "hailuo:cancel:2" in m.custom_ids()
        )
        d.wait_for(lambda: d.message(first_card.id).custom_ids() == [], timeout=5, what="no Cancel once sent")

        refusal = d.click(card, "hailuo:cancel:2", user=bob).wait_response()
        assert "Only the member who asked for video #2, or a moderator, can cancel it." in refusal.content
        d.click(card, "hailuo:cancel:2").wait_response()
        d.wait_for(
            lambda: "Cancelled" in d.message(card.id).text, timeout=5, what="the card to say cancelled"
        )
        assert d.message(card.id).custom_ids() == []
        assert world.values("SELECT state, charge_state FROM jobs WHERE id = 2") == [
            ("cancelled", "refunded")
        ]
        assert world.values("SELECT kind FROM ledger WHERE job_id = 2 ORDER BY id") == [
            ("reserve",),
            ("refund",),
        ]
        assert len(world.novita.submits) == 1


def test_regenerate_reads_the_source_message_again_when_the_image_link_expires(tmp_path: Path) -> None:
    # Reading another member's message over REST needs the application's Message Content intent (the portal's
    # toggle): without it Discord returns the message blank, and the member is told the image has expired.
    with running_world(tmp_path, discord_options={"privileged_intents": ["message_content"]}) as world:
        d = world.discord
        d.world.cdn_link_lifetime = 60.0  # within the bot's safety margin: treated as about to expire
        source = d.post_message(None, d.owner, "", attachments=[("cliff.png", picture(), "image/png")])
        menu = d.context_menu("Animate image", source)
        menu.wait_response()
        d.submit_modal(menu, {"prompt": "waves hit the cliff"}).wait_response()
        result = d.wait_for_message(
            lambda m: m.attachments and (m.message_reference or {}).get("message_id") == str(source.id),
            timeout=30,
        )
        assert result.custom_ids() == result_ids(1)

        # The exact input is kept for the retention period: Regenerate uses it without asking Discord.
        regen = d.click(result, "hailuo:regen:1")
        assert not regen.wait_response().ephemeral
        regen.wait_original(lambda m: m.attachments, timeout=30)
        assert not d.requests_matching("GET", f"/channels/{d.channel.id}/messages/{source.id}")
        # Past retention (the kept copy gone), the link is about to expire: the source message is read again.
        (tmp_path / "data" / "media" / "images" / "1.jpg").unlink()
        regen = d.click(result, "hailuo:regen:1")
        assert not regen.wait_response().ephemeral
        regen.wait_original(lambda m: m.attachments, timeout=30)
        assert d.requests_matching("GET", f"/channels/{d.channel.id}/messages/{source.id}")
        assert [t.image_size for t in world.novita.tasks.values()] == [(800, 600)] * 3

        d.delete_message(source)
        refusal = d.click(result, "hailuo:regen:1").wait_response()
        assert refusal.ephemeral
        assert refusal.content.startswith("The original image of video #1 has expired")
        assert len(world.novita.submits) == 3
