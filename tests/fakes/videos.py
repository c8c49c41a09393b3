"""Real MP4 files for the fakes and tests, made with the ffmpeg binary that imageio-ffmpeg ships.

Videos are cached per process in one temporary folder, so a test suite encodes each kind once.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg

_CACHE = Path(tempfile.mkdtemp(prefix="hailuo-fake-videos-"))
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)  # one folder per process, removed at its exit


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str]) -> None:
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(
    dest: Path,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 24,
    first_frame: Path | None = None,
    noise_bitrate_kbps: int | None = None,
) -> Path:
    """Encode an H.264 MP4 at `dest`.

    - default: ffmpeg's moving test pattern;
    - `first_frame`: the video starts on that image and zooms slowly into it (like image-to-video);
    - `noise_bitrate_kbps`: random noise encoded at about that bitrate, to make files of a chosen size.
    """
    w, h = size
    common = [
        "-t",
        f"{seconds}",
        "-r",
        str(fps),
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
    ]
    if first_frame is not None:
        frames = max(1, int(seconds * fps))
        zoom = f"zoompan=z='min(1+0.002*on,1.2)':d={frames}:s={w}x{h}:fps={fps}"
        _run(["-loop", "1", "-i", str(first_frame), "-vf", f"scale={w}:{h},{zoom}", *common, str(dest)])
    elif noise_bitrate_kbps is not None:
        rate = f"{noise_bitrate_kbps}k"
        source = f"nullsrc=s={w}x{h}:r={fps},geq=random(1)*255:128:128"
        _run(
            [
                "-f",
                "lavfi",
                "-i",
                source,
                *common,
                "-preset",
                "ultrafast",
                "-b:v",
                rate,
                "-maxrate",
                rate,
                "-bufsize",
                rate,
                str(dest),
            ]
        )
    else:
        _run(["-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={fps}", *common, str(dest)])
    return dest


@functools.cache
def sample_video(seconds: float = 2.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A small cached test-pattern MP4 (tens of kB)."""
    return make_video(_CACHE / f"sample-{seconds}-{size[0]}x{size[1]}.mp4", seconds=seconds, size=size)


@functools.cache
def sized_video(target_bytes: int, seconds: float = 6.0, size: tuple[int, int] = (640, 360)) -> Path:
    """A cached noise MP4 of roughly `target_bytes` (within about 10 %), for upload-limit tests."""
    kbps = max(50, int(target_bytes * 8 / seconds / 1000))
    return make_video(
        _CACHE / f"noise-{target_bytes}-{seconds}.mp4", seconds=seconds, size=size, noise_bitrate_kbps=kbps
    )


def video_from_image(image: bytes, seconds: float = 2.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A cached MP4 whose first frame is `image` (any format ffmpeg reads)."""
    key = hashlib.sha256(image).hexdigest()[:16]
    dest = _CACHE / f"img-{key}-{seconds}-{size[0]}x{size[1]}.mp4"
    if not dest.exists():
        src = _CACHE / f"img-{key}.bin"
        src.write_bytes(image)
        make_video(dest, seconds=seconds, size=size, first_frame=src)
    return dest
