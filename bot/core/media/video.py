"""ffmpeg work on videos: finding ffmpeg, running it (killed on cancellation and timeout), probing,
re-encoding to fit an upload limit, and the last frame."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from ..i18n import _
from .errors import FfmpegMissing, VideoError, limit_mb
from .files import cleanup_in_thread, remove_paths

log = logging.getLogger("bot.media")


# ffmpeg ----------------------------------------------------------------------------------------------
_FFMPEG_MISSING = _(
    "Video processing isn't available on this bot right now (ffmpeg is missing); tell its operator."
)
_FFMPEG_HELP = (
    "ffmpeg not found: install the imageio-ffmpeg package (pip install imageio-ffmpeg) or a system ffmpeg, "
    "or set FFMPEG_BINARY to the path of an ffmpeg executable"
)


@functools.cache
def _resolve_ffmpeg(configured: str | None) -> str:
    if configured:
        found = shutil.which(configured)
        if found:
            return found
        log.warning("FFMPEG_BINARY=%r is not an executable; falling back to imageio-ffmpeg", configured)
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:
        detail = f"{_FFMPEG_HELP}. FFMPEG_BINARY={configured!r}; imageio-ffmpeg said: {exc!r}"
        raise FfmpegMissing(_FFMPEG_MISSING, detail) from exc
    found = shutil.which(exe)
    if not found:
        raise FfmpegMissing(_FFMPEG_MISSING, f"{_FFMPEG_HELP}. imageio-ffmpeg gave {exe!r}, not executable")
    return found


def ffmpeg_exe() -> str:
    """The ffmpeg binary: `FFMPEG_BINARY` if set and executable, else imageio-ffmpeg's (cached per setting).

    The first call may run `ffmpeg -version`; async code calls it through a thread.
    """
    return _resolve_ffmpeg(os.environ.get("FFMPEG_BINARY") or None)


_STDERR_LIMIT = 256 * 1024


async def _read_bounded(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Read a stream to its end, keeping at most its first and last `limit // 2` bytes."""
    head = bytearray()
    tail = bytearray()
    half = limit // 2
    while chunk := await stream.read(65536):
        if len(head) < half:
            take = half - len(head)
            head += chunk[:take]
            chunk = chunk[take:]
        tail += chunk
        if len(tail) > half:
            del tail[:-half]
    return bytes(head + tail)


async def run_ffmpeg(args: list[str], *, limit_s: float) -> tuple[int, str]:
    """Run ffmpeg with `args`; return (exit code, stderr). Killed on timeout (VideoError) and cancellation."""
    exe = await asyncio.to_thread(ffmpeg_exe)
    try:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "-hide_banner",
            "-nostdin",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except (FileNotFoundError, PermissionError) as exc:
        _resolve_ffmpeg.cache_clear()
        raise FfmpegMissing(_FFMPEG_MISSING, f"{_FFMPEG_HELP}. Cannot start {exe}: {exc!r}") from exc
    except OSError as exc:  # out of processes or file descriptors: not the binary's fault
        raise VideoError(
            _("The video couldn't be processed right now. Try again shortly."), repr(exc)
        ) from exc
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(limit_s):
            err = await _read_bounded(proc.stderr, _STDERR_LIMIT)
            code = await proc.wait()
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(BaseException):
            await asyncio.shield(asyncio.wait_for(proc.wait(), 5))
        if isinstance(exc, TimeoutError):
            raise VideoError(
                _("Processing the video took too long."), f"ffmpeg timed out after {limit_s:.0f}s: {args!r}"
            ) from exc
        raise
    return code, err.decode("utf-8", "replace")


def _ff_path(path: Path) -> str:
    """A local path as ffmpeg must see it: never a URL, an option or another protocol, whatever its name."""
    return f"file:{path}"


def _last_lines(text: str, n: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int
    height: int
    codec: str
    has_audio: bool
    size_bytes: int


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (.*)$", re.MULTILINE)
_SIZE_RE = re.compile(r",\s*(\d{1,5})x(\d{1,5})(?=[\s,\[]|$)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_PROBE_TIMEOUT = 30.0


def _parse_probe(stderr: str, size_bytes: int) -> VideoInfo:
    duration = _DURATION_RE.search(stderr)
    video: tuple[str, int, int] | None = None
    has_audio = False
    video_end = -1
    for match in _STREAM_RE.finditer(stderr):
        kind, rest = match.group(1), match.group(2)
        if kind == "Audio":
            has_audio = True
        elif video is None and "attached pic" not in rest:
            size = _SIZE_RE.search(rest)
            if size:
                video = (rest.split()[0].rstrip(","), int(size.group(1)), int(size.group(2)))
                video_end = match.end()
    if duration is None or video is None:
        raise VideoError(
            _("The video file is unreadable."), f"ffmpeg could not read it: {_last_lines(stderr)}"
        )
    hours, minutes, seconds = duration.groups()
    codec, width, height = video
    # A display rotation of ±90° (phone videos) makes the video show, and re-encode, the other way round.
    next_stream = stderr.find("Stream #", video_end)
    rotation = _ROTATION_RE.search(stderr, video_end, next_stream if next_stream != -1 else len(stderr))
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    return VideoInfo(
        duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        width=width,
        height=height,
        codec=codec,
        has_audio=has_audio,
        size_bytes=size_bytes,
    )


async def probe_video(path: Path) -> VideoInfo:
    """Duration, size, codec and audio presence, parsed from `ffmpeg -i` (there is no ffprobe)."""
    try:
        size_bytes = (await asyncio.to_thread(path.stat)).st_size
    except OSError as exc:
        raise VideoError(_("The video file is missing."), f"cannot stat {path}: {exc!r}") from exc
    _code, stderr = await run_ffmpeg(
        ["-i", _ff_path(path)], limit_s=_PROBE_TIMEOUT
    )  # exits 1: no output given
    info = _parse_probe(stderr, size_bytes)
    if info.duration_s <= 0:
        raise VideoError(_("The video file is unreadable."), f"{path}: zero duration")
    return info


# Re-encoding to fit an upload limit ------------------------------------------------------------------
_FIT_FRACTION = 0.92  # aim below the limit: container overhead and rate-control error
_AUDIO_BPS = 96_000
_MIN_VIDEO_BPS = 150_000  # below this even 360p is unwatchable: give up instead
_MIN_BITS_PER_PIXEL = 0.05  # per frame; below it, a smaller picture looks better than a blocky one
_ASSUMED_FPS = 25.0  # Hailuo writes 24-25 fps; the heuristic does not need the exact figure
_SHORT_SIDE_LADDER = (1080, 720, 540, 360)
_ENCODE_TRIES = 3
_X264_PRESET = "veryfast"


def even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _choose_size(width: int, height: int, video_bps: float) -> tuple[int, int]:
    """The largest size on the ladder with acceptable bits per pixel (never upscaled; even sides)."""
    short, long_ = min(width, height), max(width, height)
    candidates = [short, *(s for s in _SHORT_SIDE_LADDER if s < short)]
    chosen = candidates[-1]
    for side in candidates:
        scaled_long = long_ * side / short
        if video_bps / (side * scaled_long * _ASSUMED_FPS) >= _MIN_BITS_PER_PIXEL:
            chosen = side
            break
    scaled_short, scaled_long = even(chosen), even(long_ * chosen / short)
    return (scaled_short, scaled_long) if width < height else (scaled_long, scaled_short)


def _too_big(max_bytes: int, detail: str) -> VideoError:
    return VideoError(
        _(
            "The video is too large for this channel's {limit} upload limit, even compressed.",
            limit=limit_mb(max_bytes),
        ),
        detail,
    )


async def reencode_to_fit(
    src: Path, dst: Path, max_bytes: int, *, info: VideoInfo | None = None
) -> VideoInfo:
    """Re-encode `src` as an H.264/AAC MP4 at `dst` no bigger than `max_bytes`; return the result's info.

    Single-pass ABR capped by -maxrate/-bufsize, aiming at 92 % of the limit; the output is measured and
    re-encoded at a lower rate if it still overshoots (up to three tries). The picture is scaled down only
    when the bitrate per pixel would otherwise be too low.
    """
    if info is None:
        info = await probe_video(src)
    audio_bps = _AUDIO_BPS if info.has_audio else 0
    total_bps = max_bytes * 8 * _FIT_FRACTION / info.duration_s
    limit_s = 120 + info.duration_s * 30
    tmp = dst.with_name(f"{dst.name}.{uuid.uuid4().hex[:8]}.part")
    last_size = 0
    try:
        for attempt in range(1, _ENCODE_TRIES + 1):
            video_bps = total_bps - audio_bps
            if video_bps < _MIN_VIDEO_BPS:
                raise _too_big(
                    max_bytes,
                    f"{src}: {info.duration_s:.1f}s at {max_bytes} bytes leaves {video_bps / 1000:.0f} kb/s",
                )
            width, height = _choose_size(info.width, info.height, video_bps)
            kbps = int(video_bps / 1000)
            # 0:V:0 is the first video stream that is not cover art.
            args = ["-loglevel", "error", "-nostats", "-y", "-i", _ff_path(src), "-map", "0:V:0"]
            args += ["-vf", f"scale={width}:{height}", "-pix_fmt", "yuv420p", "-c:v", "libx264"]
            args += ["-preset", _X264_PRESET, "-profile:v", "high", "-b:v", f"{kbps}k"]
            args += ["-maxrate", f"{int(kbps * 1.25)}k", "-bufsize", f"{kbps * 2}k"]
            if info.has_audio:
                args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{_AUDIO_BPS // 1000}k"]
            else:
                args += ["-an"]
            args += ["-sn", "-dn", "-movflags", "+faststart", "-f", "mp4", _ff_path(tmp)]
            code, stderr = await run_ffmpeg(args, limit_s=limit_s)
            if code != 0:
                raise VideoError(
                    _("The video couldn't be compressed to fit this channel."),
                    f"ffmpeg exit {code} re-encoding {src}: {_last_lines(stderr)}",
                )
            last_size = (await asyncio.to_thread(tmp.stat)).st_size
            log.info(
                "re-encode %s try %d: %dx%d at %d kb/s -> %d bytes (limit %d)",
                src.name,
                attempt,
                width,
                height,
                kbps,
                last_size,
                max_bytes,
            )
            if last_size <= max_bytes:
                result = await probe_video(tmp)
                await asyncio.to_thread(os.replace, tmp, dst)
                return result
            # Scale the rate by how far we overshot, and always by at least 10 %.
            total_bps = min(total_bps * (max_bytes * _FIT_FRACTION / last_size), total_bps * 0.9)
        raise _too_big(max_bytes, f"{src}: still {last_size} bytes after {_ENCODE_TRIES} tries")
    except BaseException:
        await cleanup_in_thread(remove_paths, (tmp,))
        raise


# Last frame ------------------------------------------------------------------------------------------
async def extract_last_frame(video: Path) -> bytes:
    """JPEG bytes of the video's final frame.

    Decodes only the last half-second (`-sseof`) and lets the image2 muxer overwrite one file with every
    frame (`-update 1`), so what remains is the last frame in presentation order. If that window holds no
    frame (a very low frame rate, an odd file), wider windows and finally the whole video are decoded.
    """
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hailuo-frame-"))
    out = workdir / "last.jpg"
    detail = ""
    try:
        for window in ("-0.5", "-3", None):
            seek = ["-sseof", window] if window else []
            await asyncio.to_thread(remove_paths, (out,))  # never return a previous attempt's frame
            args = ["-loglevel", "error", "-y", *seek, "-i", _ff_path(video), "-map", "0:V:0"]
            args += ["-an", "-sn", "-dn", "-fps_mode", "passthrough", "-q:v", "2"]
            args += ["-update", "1", "-f", "image2", _ff_path(out)]
            code, stderr = await run_ffmpeg(args, limit_s=60 if window else 300)
            data = await asyncio.to_thread(_read_if_nonempty, out)
            if code == 0 and data:
                return data
            detail = f"ffmpeg exit {code}, window {window}: {_last_lines(stderr)}"
            log.debug("last frame of %s: %s", video, detail)
        raise VideoError(_("Couldn't read the last frame of that video."), f"{video}: {detail}")
    finally:
        await cleanup_in_thread(remove_paths, (workdir,))


def _read_if_nonempty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
