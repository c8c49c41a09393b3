"""Trial mode's simulator: Novita's timeline and refusals, real videos over loopback, restarts, the engine."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from bot.core import media
from bot.core.engine import Engine
from bot.core.models import JobRequest, JobState
from bot.core.novita import GenerationRequest, NovitaBadRequest, TaskResult, TaskStatus
from bot.core.settings import load_settings
from bot.core.simulate import FAIL_REASON, SimulatedNovita
from tests.support.recording_reporter import RecordingReporter


def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatedNovita]:
    async with SimulatedNovita(tmp_path / "sim", queued_s=0.2, processing_s=0.6) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def settle(sim: SimulatedNovita, task_id: str, timeout: float = 30) -> list[TaskResult]:
    results: list[TaskResult] = []
    async with asyncio.timeout(timeout):
        while not results or not results[-1].finished:
            results.append(await sim.get_result(task_id))
            await asyncio.sleep(0.05)
    return results


async def test_text_job_follows_novitas_timeline_and_its_video_downloads(
    sim: SimulatedNovita, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    task_id = await sim.submit(GenerationRequest(prompt="a paper boat on a stormy sea", duration=10))
    results = await settle(sim, task_id)
    statuses = [r.status for r in results]
    assert statuses[0] == TaskStatus.QUEUED
    assert TaskStatus.PROCESSING in statuses
    assert statuses[-1] == TaskStatus.SUCCEED
    assert statuses == sorted(
        statuses, key=[TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.SUCCEED].index
    )
    processing = [r for r in results if r.status == TaskStatus.PROCESSING]
    progress = [r.progress_percent for r in processing]
    assert progress == sorted(progress)
    assert all(r.eta_seconds is not None and r.eta_seconds >= 1 for r in processing)
    video = results[-1].video
    assert video is not None
    assert video.url.startswith("http://127.0.0.1:")
    assert video.ttl_seconds == 3600
    dest = tmp_path / "out.mp4"
    size = await media.download_video(http, video.url, dest)  # the runner's own download path
    assert size > 1000
    info = await media.probe_video(dest)
    assert info.duration_s == pytest.approx(10, abs=0.2)
    assert (info.width, info.height) == (640, 360)


async def test_image_job_keeps_the_first_frames_aspect_ratio(
    sim: SimulatedNovita, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    uri = media.to_data_uri(jpeg(600, 900))
    task_id = await sim.submit(GenerationRequest(prompt="it moves", image_data_uri=uri))
    result = (await settle(sim, task_id))[-1]
    assert result.video is not None
    dest = tmp_path / "img.mp4"
    await media.download_video(http, result.video.url, dest)
    info = await media.probe_video(dest)
    assert (info.width, info.height) == (360, 540)
    assert info.duration_s == pytest.approx(6, abs=0.2)


async def test_refuses_what_novita_refuses(sim: SimulatedNovita) -> None:
    with pytest.raises(NovitaBadRequest, match="1080P"):
        await sim.submit(GenerationRequest(prompt="x", duration=10, resolution="1080P"))
    with pytest.raises(NovitaBadRequest, match="prompt"):
        await sim.submit(GenerationRequest(prompt=""))
    with pytest.raises(NovitaBadRequest):
        await sim.submit(GenerationRequest(prompt="x", image_data_uri="data:image/jpeg;base64,@@@"))


async def test_fail_tag_ends_as_a_failed_task_with_a_reason(sim: SimulatedNovita) -> None:
    task_id = await sim.submit(GenerationRequest(prompt="show me a failure #fail"))
    result = (await settle(sim, task_id))[-1]
    assert result.status == TaskStatus.FAILED
    assert result.reason == FAIL_REASON
    assert result.videos == ()


async def test_unknown_task_fails_cleanly(sim: SimulatedNovita) -> None:
    result = await sim.get_result("sim-" + "0" * 32)
    assert result.status == TaskStatus.FAILED
    assert "no record" in result.reason
    assert (await sim.get_result("../../etc/passwd")).status == TaskStatus.FAILED


async def test_a_task_survives_a_restart_of_the_simulator(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    folder = tmp_path / "sim"
    async with SimulatedNovita(folder, queued_s=0.1, processing_s=0.3) as first:
        task_id = await first.submit(GenerationRequest(prompt="before the restart"))
    # The first simulator is gone (its render cancelled); a new one over the same folder knows the task.
    async with SimulatedNovita(folder, queued_s=0.1, processing_s=0.3) as second:
        result = (await settle(second, task_id))[-1]
        assert result.status == TaskStatus.SUCCEED
        assert result.video is not None
        await media.download_video(http, result.video.url, tmp_path / "after.mp4")
    meta = json.loads((folder / f"{task_id}.json").read_text())
    assert meta["prompt"] == "before the restart"


async def test_engine_in_trial_mode_needs_no_key_and_marks_jobs_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        novita_mode="simulate",
        novita_api_key="",
        database_path=tmp_path / "hailuo.db",
        media_dir=tmp_path / "media",
        poll_min_s=0.05,
        poll_first_s=0.1,
        poll_max_s=0.3,
        novita_rate_per_minute=600,
    )
    assert settings.novita_api_key is None
    reporter = RecordingReporter(tmp_path / "out")
    engine = Engine(settings, reporter)
    assert engine.simulated
    async with engine as runner:
        assert isinstance(engine.novita, SimulatedNovita)
        engine.novita.queued_s, engine.novita.processing_s = 0.1, 0.3
        await runner.start()
        started = time.monotonic()
        job, decision = await runner.submit(
            JobRequest(guild_id=1, channel_id=2, user_id=3, prompt="a red fox")
        )
        assert job is not None, decision.message
        assert job.simulated
        runner.start_job(job.id)
        job = await runner.wait_settled(job.id, 60)
    assert job.state == JobState.DELIVERED
    assert job.simulated
    assert job.task_id is not None
    assert job.task_id.startswith("sim-")
    assert reporter.delivered[0][1].read_bytes()[4:8] == b"ftyp"
    assert time.monotonic() - started < 30


def test_live_mode_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOVITA_MODE", raising=False)
    settings = load_settings(novita_api_key="k", database_path=tmp_path / "db")
    assert settings.novita_mode == "live"
    assert not Engine(settings).simulated


def colour_jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


async def test_a_last_frame_makes_a_real_cross_fade_from_the_first_picture(
    sim: SimulatedNovita, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    red, blue = (230, 30, 30), (30, 30, 230)
    request = GenerationRequest(
        prompt="red to blue",
        image_data_uri=media.to_data_uri(colour_jpeg(red)),
        end_image_data_uri=media.to_data_uri(colour_jpeg(blue, (800, 480))),
    )
    task_id = await sim.submit(request)
    result = (await settle(sim, task_id))[-1]
    assert result.video is not None
    dest = tmp_path / "fade.mp4"
    await media.download_video(http, result.video.url, dest)
    last = Image.open(io.BytesIO(await media.extract_last_frame(dest))).convert("RGB")
    first_frame = tmp_path / "first.png"
    proc = await asyncio.create_subprocess_exec(
        media.ffmpeg_exe(), "-loglevel", "error", "-i", str(dest), "-frames:v", "1", str(first_frame)
    )
    assert await proc.wait() == 0
    first = Image.open(first_frame).convert("RGB")
    middle = (first.width // 2, first.height // 3)  # above the prompt band, below the badge
    r, _, b = first.getpixel(middle)
    assert r > 150 > b  # starts red
    r, _, b = last.getpixel(middle)
    assert b > 150 > r  # ends blue
    assert (first.width, first.height) == (480, 360)  # the first frame's shape


@pytest.mark.parametrize(
    ("model", "image", "end_image", "needle"),
    [
        ("hailuo-2.3", True, True, "end_image is not accepted"),
        ("hailuo-2.3-fast", False, False, "image is required"),
        ("hailuo-02", False, True, "end_image needs image"),
        ("hailuo-9", False, False, "no such model"),
    ],
)
async def test_each_model_refuses_what_its_endpoint_refuses(
    sim: SimulatedNovita, model: str, image: bool, end_image: bool, needle: str
) -> None:
    uri = media.to_data_uri(colour_jpeg((1, 2, 3)))
    request = GenerationRequest(
        prompt="x",
        model=model,
        image_data_uri=uri if image else None,
        end_image_data_uri=uri if end_image else None,
    )
    with pytest.raises(NovitaBadRequest, match=needle):
        await sim.submit(request)


@pytest.mark.parametrize("model", ["hailuo-2.3", "hailuo-2.3-fast"])
async def test_other_models_make_videos_in_trial_mode(sim: SimulatedNovita, model: str) -> None:
    uri = media.to_data_uri(colour_jpeg((10, 200, 10)))
    task_id = await sim.submit(GenerationRequest(prompt="grass", model=model, image_data_uri=uri))
    result = (await settle(sim, task_id))[-1]
    assert result.succeeded
    assert result.video is not None
