"""Downloads: images from allowed origins only, videos streamed to disk in chunks (never whole in memory)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urljoin, urlsplit

import aiohttp

from .errors import ImageRejected, VideoError, limit_mb
from .files import cleanup_in_thread, remove_paths
from .image_rules import MAX_IMAGE_BYTES

log = logging.getLogger("bot.media")


# Downloads -------------------------------------------------------------------------------------------
def _redact(url: str) -> str:
    """The URL without its query string: signed CDN links should not end up in logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


MAX_REDIRECTS = 3
NOT_ON_DISCORD = (
    "That image isn't stored on Discord, so I can't fetch it. Upload the image to Discord and try again."
)


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lower-case; None for anything else (userinfo included)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


@functools.lru_cache(maxsize=64)
def _origin_pattern(origin: str) -> re.Pattern[str]:
    """An origin with `*` standing for one or more letters, digits or hyphens (a part of one host label)."""
    return re.compile("".join("[a-z0-9-]+" if c == "*" else re.escape(c) for c in origin.lower()))


def image_url_allowed(url: str, origins: Sequence[str]) -> bool:
    """Is `url` on one of `origins` (e.g. `https://cdn.discordapp.com`, `https://images-ext-*.discordapp.net`)?"""
    origin = _origin(url)
    return origin is not None and any(_origin_pattern(o).fullmatch(origin) for o in origins)


async def download_image(
    session: aiohttp.ClientSession,
    url: str,
    *,
    origins: Sequence[str] | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    timeout: float = 30,  # noqa: ASYNC109 - the whole transfer's limit, handed to aiohttp
) -> bytes:
    """Fetch an image into memory, refusing (and stopping the transfer) once it passes `max_bytes`.

    Only from `origins` (the settings' IMAGE_ORIGINS: Discord's media hosts), and redirects only to them;
    without `origins`, only from the URL's own origin. What the remote server answered (its status) goes to
    the log detail, never to the member: it would make the bot a probe of places it can reach.
    """
    retry = "try uploading it again"
    failed = f"Couldn't download the image; {retry}."
    allowed = tuple(origins) if origins is not None else tuple(filter(None, [_origin(url)]))
    too_big = ImageRejected(
        f"That image is over {limit_mb(max_bytes)}; it must be smaller. "
        "Try a smaller or more compressed image.",
        f"image download over {max_bytes} bytes from {_redact(url)}",
    )
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_REDIRECTS + 1):
                if not image_url_allowed(url, allowed):
                    raise ImageRejected(NOT_ON_DISCORD, f"image URL off the allowed hosts: {_redact(url)}")
                async with session.get(url, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise ImageRejected(failed, f"image download HTTP {resp.status} from {_redact(url)}")
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise too_big
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        buf += chunk
                        if len(buf) > max_bytes:
                            raise too_big
                    return bytes(buf)
            raise ImageRejected(
                failed, f"image download: more than {MAX_REDIRECTS} redirects from {_redact(url)}"
            )
    except aiohttp.ClientResponseError as exc:  # a session created with raise_for_status=True
        raise ImageRejected(failed, f"image download HTTP {exc.status} from {_redact(url)}") from exc
    except TimeoutError as exc:
        raise ImageRejected(
            f"Couldn't download the image in time; {retry}.", f"image download timed out: {_redact(url)}"
        ) from exc
    except aiohttp.ClientError as exc:
        raise ImageRejected(failed, f"image download failed: {_redact(url)}: {exc!r}") from exc


def is_mp4(path: Path) -> bool:
    """True when the file starts with an ISO-BMFF `ftyp` box (blocking: a 12-byte read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return _looks_like_mp4(head)


def _looks_like_mp4(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp" and int.from_bytes(head[:4], "big") >= 8


def _sync_and_close(f: IO[bytes]) -> None:
    """Flush to the disk before the rename, so a crash cannot leave an empty file under the final name."""
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _close_and_remove(f: IO[bytes] | None, path: Path) -> None:
    if f is not None:
        with contextlib.suppress(OSError):
            f.close()
    remove_paths((path,))


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    max_bytes: int = 2 * 1024**3,
    timeout: float = 300,  # noqa: ASYNC109 - the whole transfer's limit, handed to aiohttp
    chunk_size: int = 256 * 1024,
) -> int:
    """Stream a video to `dest` (through `dest.part`), check it is an MP4, and return its size in bytes.

    Memory stays around two chunks whatever the size; on any failure, cancellation included, no file is left.
    """
    part = dest.with_suffix(dest.suffix + ".part")
    where = _redact(url)
    retry = "Try generating it again."
    not_mp4 = "Novita sent something that isn't an MP4 video. " + retry
    too_large = "The finished video is too large to handle."
    f: IO[bytes] | None = None
    total = 0
    try:
        try:
            async with session.get(
                url, timeout=aiohttp.ClientTimeout(total=timeout), read_bufsize=chunk_size
            ) as resp:
                if resp.status != 200:
                    raise VideoError(
                        f"Couldn't download the finished video (HTTP {resp.status}); the link may have "
                        "expired. " + retry,
                        f"video download HTTP {resp.status} from {where}",
                    )
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise VideoError(
                        too_large, f"video Content-Length {resp.content_length} > {max_bytes} from {where}"
                    )
                await asyncio.to_thread(part.parent.mkdir, parents=True, exist_ok=True)
                f = await asyncio.to_thread(open, part, "wb")
                pending = bytearray()
                checked = False
                async for chunk in resp.content.iter_chunked(chunk_size):
                    total += len(chunk)
                    if total > max_bytes:
                        raise VideoError(too_large, f"video download passed {max_bytes} bytes from {where}")
                    pending += chunk
                    if not checked and len(pending) >= 12:
                        # Refuse an HTML error page at once rather than after downloading all of it.
                        if not _looks_like_mp4(bytes(pending[:12])):
                            raise VideoError(not_mp4, f"not an MP4 from {where}: {bytes(pending[:64])!r}")
                        checked = True
                    if len(pending) >= chunk_size:
                        await asyncio.to_thread(f.write, pending)
                        pending = bytearray()
                if pending:
                    await asyncio.to_thread(f.write, pending)
                del pending
            await asyncio.to_thread(_sync_and_close, f)
            if not await asyncio.to_thread(is_mp4, part):
                raise VideoError(not_mp4, f"not an MP4 ({total} bytes) from {where}")
            await asyncio.to_thread(os.replace, part, dest)
        except aiohttp.ClientResponseError as exc:  # a session created with raise_for_status=True
            raise VideoError(
                f"Couldn't download the finished video (HTTP {exc.status}); the link may have expired. "
                + retry,
                f"video download HTTP {exc.status} from {where}",
            ) from exc
        except TimeoutError as exc:
            raise VideoError(
                "Downloading the finished video took too long. " + retry, f"video download timed out: {where}"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise VideoError(
                "Couldn't download the finished video. " + retry, f"video download failed: {where}: {exc!r}"
            ) from exc
    except BaseException:
        await cleanup_in_thread(_close_and_remove, f, part)
        raise
    log.info("downloaded video %s (%d bytes) to %s", where, total, dest)
    return total
