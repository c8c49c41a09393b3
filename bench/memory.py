"""Resident memory while the real bot process delivers a 100 MB video (download + re-encode + upload).

The fake Discord's server has no boost, so its upload limit is 10 MiB and the bot must re-encode the video
with ffmpeg (`media.reencode_to_fit`) before posting it. The video is ~100 MB of 720p noise (6 s at a high
bitrate, which keeps the ffmpeg work short), made once and cached in the system temp folder.

Baseline: the bot's RSS, idle, after one small job went end to end (so first-use allocations are behind
us). Peak: the kernel's high-water mark (VmHWM, reset to the baseline just before the job; exact whatever
the sampling rate) and 10 ms psutil samples as a cross-check. ffmpeg runs in a child process: its own peak
is reported beside, not counted in the bot's.

Then four members send /video at once, each with a 7000 × 7000 PNG of a few hundred kB (196 MB each if it
were decoded whole): the bot's peak while the four are prepared (downloaded, checked, reduced to a JPEG).
"""

from __future__ import annotations

import io
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.common import MB, Deadline, ProcWatch, Section, mbytes, peak_rss, reset_peak_rss, secs
from bench.fakes import BenchNovita, big_video
from bench.latency import SHORT, UPLOAD_NAME
from bench.world import BenchWorld, bench_world, lag_summary
from tests.fakes.novita import Timeline

BIG_PNG_SIDE = 7000
PNG_UPLOADS = 4
IMAGE_TARGET = 200 * MB


@dataclass
class MemoryConfig:
    video_bytes: int = 100 * MB
    baseline_s: float = 3.0
    ffmpeg_nice: int | None = None  # experiment: the bot's ffmpeg at this nice level (see bench/probe)


def run(cfg: MemoryConfig, deadline: Deadline) -> Section:
    section = Section("memory")
    video = big_video(cfg.video_bytes)
    size = video.stat().st_size
    novita = BenchNovita(default_timeline=SHORT)
    env = {"HAILUO_BENCH_FFMPEG_NICE": str(cfg.ffmpeg_nice)} if cfg.ffmpeg_nice is not None else {}
    with (
        tempfile.TemporaryDirectory(prefix="hailuo-bench-mem-") as tmp,
        bench_world(Path(tmp), novita, env=env) as world,
    ):
        discord = world.discord
        novita.rescript(SHORT)
        warm = discord.slash("video", {"prompt": "warm-up: a paper boat"})
        warm.wait_original(lambda m: m.attachments, timeout=deadline.left(60))
        time.sleep(1.0)
        with ProcWatch(world.pid, interval=0.01) as watch:
            t0 = time.monotonic()
            time.sleep(cfg.baseline_s)
            baseline = statistics.median(rss for at, rss in watch.samples if at >= t0)
            hwm_reset = reset_peak_rss(world.pid)
            novita.rescript(Timeline(queued_s=0.5, processing_s=1.0, video=video))
            t1 = time.monotonic()
            big = discord.slash("video", {"prompt": "a storm over the sea, in great detail"})
            card = big.wait_original(lambda m: m.attachments, timeout=deadline.left(240))
            time.sleep(1.0)
            t2 = time.monotonic()
            hwm = peak_rss(world.pid) or 0
            sampled = watch.max_rss(t1, t2)
            after = watch.samples[-1][1]
            child_peak = watch.child_peak
        uploads = [r for r in discord.requests if any(UPLOAD_NAME.fullmatch(f.filename) for f in r.files)]
        upload = uploads[-1]
        job_id = int(UPLOAD_NAME.fullmatch(upload.files[0].filename).group(1))  # type: ignore[union-attr]
        task = next(t for t in novita.tasks.values() if t.timeline.video == video)
        db = sqlite3.connect(f"file:{world.db}?mode=ro", uri=True, timeout=10)
        try:
            finished_at = db.execute("SELECT finished_at FROM jobs WHERE id = ?", [job_id]).fetchone()[0]
        finally:
            db.close()
        detected = datetime.fromisoformat(finished_at).timestamp() - (time.time() - time.monotonic())
        lag50, lag99, lagmax = lag_summary(world.lag_samples(t1, t2))
        images = _four_big_pngs(world, deadline)

    peak = max(hwm if hwm_reset else 0, sampled)
    growth = peak - baseline
    section.add(
        f"RSS growth delivering a {size / MB:.0f} MB video", f"+{mbytes(growth)} (peak {mbytes(peak)})",
        "< 30 MB", growth < 30 * MB,
        "streaming: the download is written in 256 kB chunks, ffmpeg works in its own process and the "
        "upload streams the re-encoded file from disk; what is left is aiohttp's buffers and one upload "
        "body in flight",
    )  # fmt: skip
    section.notes.append(
        f"{size / MB:.0f} MB delivery: baseline {mbytes(baseline)}, bot peak {mbytes(peak)} (VmHWM "
        f"{'reset and read' if hwm_reset else 'not resettable; psutil samples only'}: {mbytes(hwm)}, sampled "
        f"{mbytes(sampled)}), after {mbytes(after)}; ffmpeg peak {mbytes(child_peak)} (a separate process); "
        f"uploaded {mbytes(upload.files[0].size)} ({card.attachments[0].filename}); detected → upload start "
        f"{secs(upload.at - detected, 1)} (download + probe + re-encode); success → detected "
        f"{secs(detected - task.finishes_at, 1)}; loop lag during it p50/p99/max "
        f"{lag50 * 1000:.0f}/{lag99 * 1000:.0f}/{lagmax * 1000:.0f} ms"
    )
    section.data = {"baseline": baseline, "peak": peak, "hwm": hwm, "sampled": sampled, "video": size}
    side = f"{BIG_PNG_SIDE}×{BIG_PNG_SIDE}"
    section.add(
        f"peak RSS preparing {PNG_UPLOADS} {side} PNGs at once", f"{mbytes(images['peak'])} "
        f"(+{mbytes(images['peak'] - images['before'])})", "< 200 MB", images["peak"] < IMAGE_TARGET,
        "IMAGE_MAX_CONCURRENT (2) at a time, each PNG decoded band by band and reduced as it is read",
    )  # fmt: skip
    section.notes.append(
        f"{PNG_UPLOADS} × {side} PNG ({images['png'] / 1024:.0f} kB each, 196 MB each decoded whole): bot "
        f"{mbytes(images['before'])} before, peak {mbytes(images['peak'])} (VmHWM {mbytes(images['hwm'])}, "
        f"sampled {mbytes(images['sampled'])}); all {PNG_UPLOADS} prepared in {secs(images['seconds'], 1)}, "
        f"sent to Novita as {images['sizes']} JPEGs"
    )
    section.data["images"] = images
    return section


def big_png() -> bytes:
    """A 7000 × 7000 picture that compresses well: small to upload, huge to decode whole."""
    im = Image.new("RGB", (BIG_PNG_SIDE, BIG_PNG_SIDE), (30, 120, 200))
    draw = ImageDraw.Draw(im)
    for i in range(0, BIG_PNG_SIDE, 350):
        draw.line((i, 0, BIG_PNG_SIDE - i, BIG_PNG_SIDE), fill=(i % 256, 200, 50), width=9)
        draw.ellipse((i, i, i + 300, i + 300), fill=(200, i % 256, 90))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _four_big_pngs(world: BenchWorld, deadline: Deadline) -> dict[str, Any]:
    """The bot's peak RSS while PNG_UPLOADS members' 7000 × 7000 PNGs are prepared at the same time."""
    discord = world.discord
    world.novita.rescript(SHORT)  # the videos that follow are small: only the images are measured
    png = big_png()
    members = [discord.add_member(None, f"painter{i}").user for i in range(PNG_UPLOADS)]
    with ProcWatch(world.pid, interval=0.01) as watch:
        time.sleep(0.5)
        before = watch.samples[-1][1]
        reset = reset_peak_rss(world.pid)
        t0 = time.monotonic()
        for member in members:
            image = ("painting.png", png, "image/png")
            discord.slash(
                "video", {"prompt": "the painting comes alive"}, attachments={"image": image}, user=member
            )

        def prepared() -> list[tuple[str, str]] | None:
            db = sqlite3.connect(f"file:{world.db}?mode=ro", uri=True, timeout=10)
            try:
                rows = db.execute(
                    "SELECT state, error FROM jobs WHERE image_name = 'painting.png'"
                ).fetchall()
            finally:
                db.close()
            done = [r for r in rows if r[0] != "accepted"]
            return done if len(done) == PNG_UPLOADS else None

        states = world.wait_for(prepared, deadline.left(120), "the four PNGs to be prepared")
        t1 = time.monotonic()
        time.sleep(0.2)
        hwm = peak_rss(world.pid) or 0
        sampled = watch.max_rss(t0, time.monotonic())
    failed = [error for state, error in states if state == "failed"]
    if failed:
        raise RuntimeError(f"a PNG was refused: {failed[0]}")
    sizes = sorted(
        {t.image_size for t in world.novita.tasks.values() if t.image_size and t.image_size[0] > 1000}
    )
    return {
        "png": len(png), "before": before, "hwm": hwm, "sampled": sampled, "seconds": t1 - t0,
        "peak": max(hwm if reset else 0, sampled), "sizes": ", ".join(f"{w}×{h}" for w, h in sizes) or "no",
    }  # fmt: skip


if __name__ == "__main__":  # a quick look: python -m bench.memory
    sec = run(MemoryConfig(video_bytes=30 * MB), Deadline(300, "memory"))
    for fig in sec.figures:
        print(f"{fig.name:44} {fig.measured:32} {fig.target:10} {fig.verdict}")
    print(*sec.notes, sep="\n")
