"""Trial mode end to end: the real bot process with NOVITA_MODE=simulate against the fake Discord only.

No Novita fake and no NOVITA_API_KEY: the in-process simulator makes real small videos, the runner downloads
them from the simulator's loopback server, and every card and result says the video is simulated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fakes.fake_discord import FakeDiscord
from tests.support.builders import png
from tests.support.harness import FAST, ROOT, BotProcess, World

pytestmark = pytest.mark.e2e


def footer(embeds: list[dict[str, object]]) -> str:
    return str(embeds[0].get("footer", {}))


def test_trial_mode_generates_and_delivers_simulated_videos(tmp_path: Path) -> None:
    fake = FakeDiscord()
    with fake.threaded():
        env = fake.env(
            NOVITA_MODE="simulate",
            DATABASE_PATH=str(tmp_path / "data" / "hailuo.db"),
            MEDIA_DIR=str(tmp_path / "data" / "media"),
            DEV_GUILD_ID=str(fake.guild.id),
            USER_MAX_CONCURRENT="10",
            DEFAULT_QUOTA_CREDITS="-1",
            **FAST,
        )
        for name in ("NOVITA_API_KEY", "NOVITA_BASE_URL"):  # nothing Novita-related is needed
            env.pop(name, None)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
        bot = BotProcess(env=env, cwd=tmp_path, log_path=tmp_path / "bot.log")
        world = World(fake, None, bot, tmp_path)  # type: ignore[arg-type]  # no fake Novita at all
        try:
            world.start_bot()
            text_job = fake.slash("video", {"prompt": "a paper boat on a stormy sea"})
            image_job = fake.slash(
                "video",
                {"prompt": "the sea comes alive"},
                attachments={"image": ("sea.png", png(), "image/png")},
            )
            frames_job = fake.slash(
                "video",
                {"prompt": "blue to red"},
                attachments={
                    "image": ("first.png", png(), "image/png"),
                    "last_frame": ("last.png", png(700, 480), "image/png"),
                },
            )
            fast_job = fake.slash(
                "video",
                {"prompt": "fast", "model": "hailuo-2.3-fast"},
                attachments={"image": ("sea.png", png(), "image/png")},
            )
            text_23 = fake.slash("video", {"prompt": "a comet", "model": "hailuo-2.3"})
            jobs = (text_job, image_job, frames_job, fast_job, text_23)
            for inter in jobs:
                response = inter.wait_response()
                assert not response.ephemeral
                assert "SIMULATED" in footer(response.data["embeds"])
            for inter in jobs:
                card = inter.wait_original(lambda m: m.attachments, timeout=90)
                video = fake.cdn_bytes(card.attachments[0])
                assert video[4:8] == b"ftyp"
                assert card.embeds[0]["title"].startswith("🎞️ Your video is ready")
                assert "SIMULATED" in footer(card.embeds)
            log = bot.log()
            assert "first and last frame" in log  # the simulator cross-faded the two
            assert "hailuo-2.3-fast" in log
            assert "WARNING" in log
            assert "TRIAL MODE" in log
            about = fake.slash("about").wait_response()
            assert "Trial mode" in json.dumps(about.data, ensure_ascii=False)
        finally:
            bot.stop()
