"""Images in, videos out: validation, normalisation, downloads and ffmpeg work.

Everything that touches Pillow runs in a worker thread, ffmpeg runs as an asyncio subprocess (killed on
cancellation and timeout) and videos are streamed to disk in chunks, so nothing here blocks the event loop
or holds a whole video in memory. The work is split by kind: `image_rules.py` (the checks), `images.py`
(normalisation, with `png_bands.py` for very large PNGs), `downloads.py`, `video.py` (ffmpeg), `files.py`
(safe removal and the retention pruner) and `errors.py`; the names below are what the rest of the bot uses,
as `media.<name>`.
"""

from .downloads import NOT_ON_DISCORD, download_image, download_video, image_url_allowed, is_mp4
from .errors import FfmpegMissing, ImageRejected, MediaError, VideoError
from .files import remove_older
from .image_rules import MAX_IMAGE_BYTES, ImageMeta, check_image_metadata
from .images import (
    NormalisedImage,
    limit_concurrent_images,
    normalise_image,
    normalise_image_sync,
    to_data_uri,
)
from .video import VideoInfo, even, extract_last_frame, ffmpeg_exe, probe_video, reencode_to_fit, run_ffmpeg

__all__ = [
    "MAX_IMAGE_BYTES",
    "NOT_ON_DISCORD",
    "FfmpegMissing",
    "ImageMeta",
    "ImageRejected",
    "MediaError",
    "NormalisedImage",
    "VideoError",
    "VideoInfo",
    "check_image_metadata",
    "download_image",
    "download_video",
    "even",
    "extract_last_frame",
    "ffmpeg_exe",
    "image_url_allowed",
    "is_mp4",
    "limit_concurrent_images",
    "normalise_image",
    "normalise_image_sync",
    "probe_video",
    "reencode_to_fit",
    "remove_older",
    "run_ffmpeg",
    "to_data_uri",
]
