"""Images in, videos out: validation, normalisation, downloads and ffmpeg work.

Everything that touches Pillow runs in a worker thread, ffmpeg runs as an asyncio subprocess (killed on
cancellation and timeout) and videos are streamed to disk in chunks, so nothing here blocks the event loop
or holds a whole video in memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import logging
import math
import os
import re
import shutil
import struct
import tempfile
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urljoin, urlsplit

import aiohttp
import imageio_ffmpeg
from PIL import Image, UnidentifiedImageError

log = logging.getLogger("bot.media")

ALLOWED_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # an image must be *under* this
MIN_SHORT_SIDE = 300  # the short side must be *over* this
MAX_IMAGE_PIXELS = 50_000_000  # the largest image accepted at all (7000 × 7000 passes)
# The most memory one image may take while it is decoded and resized. JPEGs are decoded at a reduced scale
# and large PNGs band by band, so they always fit; a WebP (or an unusual PNG) too large for it is refused.
DECODE_BUDGET_BYTES = 64 * 1024 * 1024
MAX_ASPECT = (5, 2)  # long side to short side at most 5:2, in either orientation (2:5 .. 5:2)

_USE_INSTEAD = "use a JPG, PNG or WebP image"


# Errors ----------------------------------------------------------------------------------------------
class MediaError(Exception):
    """A media problem with a message fit to show a Discord member (`user_message`) and a log `detail`."""

    def __init__(self, user_message: str, detail: str = "") -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or self.user_message


class ImageRejected(MediaError):
    """The member's image is unusable."""


class VideoError(MediaError):
    """A video could not be downloaded, probed or re-encoded."""


class FfmpegMissing(MediaError):
    """No working ffmpeg binary."""


# Image metadata (what Discord says about an attachment) --------------------------------------------
@dataclass(frozen=True)
class ImageMeta:
    filename: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None


_TYPE_NAMES = {
    "image/jpeg": "JPG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/x-bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/tiff": "TIFF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
    "image/svg+xml": "SVG",
    "image/x-icon": "ICO",
    "image/vnd.microsoft.icon": "ICO",
    "application/pdf": "PDF",
}
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_EXTENSION_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "svg": "image/svg+xml",
    "ico": "image/x-icon",
    "pdf": "application/pdf",
}


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _limit_mb(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"


def _effective_type(meta: ImageMeta) -> str | None:
    """The MIME type from `content_type`, or from the extension when the content type says nothing useful."""
    ctype = (meta.content_type or "").split(";", 1)[0].strip().lower()
    ctype = _TYPE_ALIASES.get(ctype, ctype)
    if ctype.startswith("image/") or ctype in _TYPE_NAMES:
        return ctype
    ext = meta.filename.rsplit(".", 1)[-1].lower() if "." in meta.filename else ""
    return _EXTENSION_TYPES.get(ext)


def _type_refusal(ctype: str | None) -> str:
    if ctype is None:
        return f"That file isn't a JPG, PNG or WebP image; {_USE_INSTEAD}."
    name = _TYPE_NAMES.get(ctype)
    if name is None:
        sub = ctype.split("/", 1)[-1].removeprefix("x-").split("+", 1)[0]
        name = sub.upper() if ctype.startswith("image/") and sub else None
    if name is None:
        return f"That file isn't a JPG, PNG or WebP image; {_USE_INSTEAD}."
    return f"That file is a {name}; {_USE_INSTEAD}."


def _check_dimensions(width: int, height: int) -> None:
    """Short side over 300 px and aspect ratio within 2:5..5:2 (MAX_ASPECT; exact integer arithmetic)."""
    if width <= 0 or height <= 0:
        raise ImageRejected(f"That image has no usable size; {_USE_INSTEAD}.", f"size {width}x{height}")
    short = min(width, height)
    if short <= MIN_SHORT_SIDE:
        raise ImageRejected(
            f"That image is {width}×{height} px; its short side must be over {MIN_SHORT_SIDE} px. "
            "Try a larger image.",
            f"short side {short} <= {MIN_SHORT_SIDE}",
        )
    long, most = max(width, height), MAX_ASPECT  # long/short > 5/2  <=>  2*long > 5*short (exact)
    if most[1] * long > most[0] * short:
        ratios = f"{most[1]}:{most[0]} and {most[0]}:{most[1]}"
        raise ImageRejected(
            f"That image is {width}×{height} px; its aspect ratio must be between {ratios}. "
            "Crop it closer to square and try again.",
            f"aspect {width}/{height} outside {ratios}",
        )


def check_image_metadata(meta: ImageMeta) -> None:
    """Refuse an attachment from its metadata alone (instant; the real bytes are checked later)."""
    ctype = _effective_type(meta)
    if ctype not in ALLOWED_IMAGE_TYPES:
        raise ImageRejected(_type_refusal(ctype), f"type {meta.content_type!r} / {meta.filename!r}")
    if meta.size >= MAX_IMAGE_BYTES:
        raise ImageRejected(
            f"That image is {_megabytes(meta.size)}; it must be under {_limit_mb(MAX_IMAGE_BYTES)}. "
            "Try a smaller or more compressed image.",
            f"size {meta.size}",
        )
    if meta.width is not None and meta.height is not None:
        _check_dimensions(meta.width, meta.height)


# Image bytes -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormalisedImage:
    jpeg: bytes
    width: int
    height: int
    source_format: str


# Only these parsers ever see the bytes. Multi-picture JPEGs (MPO, from many phone cameras) come through
# the JPEG opener and report the format "MPO".
_PIL_FORMATS = ("JPEG", "PNG", "WEBP")
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_MAGIC_NAMES = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG"),
    (b"\x00\x00\x01\x00", "ICO"),
)
# Every way Pillow reports unreadable image data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def _sniff_name(data: bytes) -> str | None:
    """Name a few common formats that Pillow is not allowed to open here, for a helpful refusal."""
    head = data[:32]
    for magic, name in _MAGIC_NAMES:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}:
            return "HEIC"
        if brand in {b"avif", b"avis"}:
            return "AVIF"
        return "video"
    return None


def _workable(im: Image.Image) -> Image.Image:
    """RGB, RGBA, L or LA: modes that resize well (palettes would fall back to nearest-neighbour)."""
    if im.mode in {"I;16", "I;16L", "I;16B", "I;16N", "I"}:
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")  # 16-bit grey to 8-bit
    if "transparency" in im.info or im.mode in {"PA", "RGBa", "La"}:
        return im.convert("RGBA")
    return im if im.mode in {"RGB", "RGBA", "L", "LA"} else im.convert("RGB")


def _flatten_to_rgb(im: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white."""
    if im.mode in {"RGBA", "LA"}:
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


# The table ImageOps.exif_transpose uses. Applied by hand so that only the resized image is turned.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def normalise_image_sync(
    data: bytes, *, long_side: int = 1920, max_pixels: int = MAX_IMAGE_PIXELS
) -> NormalisedImage:
    """Validate the real bytes and return an upright RGB JPEG whose long side is at most `long_side`.

    Memory stays bounded whatever the image declares: the size is judged from the header before anything is
    decoded; a JPEG is decoded at a reduced scale (libjpeg's draft mode); a large PNG is decoded band by
    band, each band reduced as it comes (`_png_reduced`); anything else is decoded whole only within
    DECODE_BUDGET_BYTES. Blocking (Pillow): call `normalise_image` from async code.
    """
    if not data:
        raise ImageRejected(f"That file is empty; {_USE_INSTEAD}.", "empty image")
    if len(data) >= MAX_IMAGE_BYTES:
        raise ImageRejected(
            f"That image is {_megabytes(len(data))}; it must be under {_limit_mb(MAX_IMAGE_BYTES)}. "
            "Try a smaller or more compressed image.",
            f"size {len(data)}",
        )
    try:
        # Only the header is read here. Pillow itself refuses far larger declared sizes
        # (DecompressionBombError); our own, lower, limit is applied below before any decoding.
        im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except UnidentifiedImageError as exc:
        name = _sniff_name(data)
        message = (
            f"That file is a {name}; {_USE_INSTEAD}."
            if name
            else f"That file isn't a readable JPG, PNG or WebP image; {_USE_INSTEAD}."
        )
        raise ImageRejected(message, f"unidentified image ({name or 'unknown'})") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(_too_many_pixels(None, max_pixels), str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"That image is damaged or incomplete; {_USE_INSTEAD}, or upload it again.", repr(exc)
        ) from exc

    with im:
        source_format = "JPEG" if im.format == "MPO" else str(im.format)
        width, height = im.size
        if width * height > max_pixels:
            raise ImageRejected(
                _too_many_pixels((width, height), max_pixels), f"{width * height} pixels > {max_pixels}"
            )
        # A 90° EXIF rotation only swaps the sides and the rules are symmetric, so an unusable image is
        # refused here, before any decoding; the upright size is checked again below.
        _check_dimensions(width, height)
        try:
            picture, icc, orientation = _decode(im, data, source_format, long_side)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(_too_many_pixels(None, max_pixels), str(exc)) from exc
        except _DECODE_ERRORS as exc:
            raise ImageRejected(
                f"That image is damaged or incomplete; {_USE_INSTEAD}, or upload it again.", repr(exc)
            ) from exc

    if orientation in _EXIF_TRANSPOSE:
        picture = picture.transpose(_EXIF_TRANSPOSE[orientation])
    _check_dimensions(*((height, width) if orientation in _ROTATED_ORIENTATIONS else (width, height)))
    rgb = _flatten_to_rgb(picture)
    del picture
    out = io.BytesIO()
    # No optimize=True: it saves a few per cent but holds the GIL for the whole encode (~40 ms at 1920 px).
    save_kw: dict[str, object] = {"quality": 90}
    if isinstance(icc, bytes):
        save_kw["icc_profile"] = icc  # keep colours right; EXIF (GPS etc.) is deliberately dropped
    rgb.save(out, "JPEG", **save_kw)
    jpeg = out.getvalue()
    if len(jpeg) >= MAX_IMAGE_BYTES:  # cannot happen at sane sizes; the limit is the API's
        raise ImageRejected("That image is too detailed to send; try a smaller image.", f"jpeg {len(jpeg)}")
    return NormalisedImage(jpeg=jpeg, width=rgb.width, height=rgb.height, source_format=source_format)


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> str:
    side = math.isqrt(max_pixels) // 100 * 100
    shown = f"That image is {size[0]}×{size[1]} px" if size else "That image has"
    return (
        f"{shown}, too many pixels to process: the largest accepted is {max_pixels / 1e6:g} megapixels "
        f"(about {side}×{side} px). Try a smaller image."
    )


def _decode(
    im: Image.Image, data: bytes, source_format: str, long_side: int
) -> tuple[Image.Image, object, int]:
    """(the picture in a workable mode, its long side at most `long_side`; ICC profile; EXIF orientation).

    What is held decoded at once stays within DECODE_BUDGET_BYTES: JPEGs are decoded at a reduced scale,
    large PNGs band by band; other images that would not fit are refused."""
    width, height = im.size
    target = _target_size(im.size, long_side)
    if getattr(im, "is_animated", False):
        im.seek(0)  # APNG / animated WebP: the first frame
    elif source_format == "JPEG" and target != im.size:
        if _decode_cost(_jpeg_scaled(im.size, target), source_format) > DECODE_BUDGET_BYTES:
            target = (math.ceil(target[0] / 2), math.ceil(target[1] / 2))  # a little under the long side
        im.draft("RGB", target)  # libjpeg decodes at a reduced scale, never below the target
    icc = im.info.get("icc_profile")
    if _decode_cost(im.size, source_format) > DECODE_BUDGET_BYTES:
        layout = _png_layout(data) if source_format == "PNG" else None
        if layout is None:  # a format (or PNG kind) that can only be decoded whole: too big for that
            most = DECODE_BUDGET_BYTES // _DECODE_COST.get(source_format, _DEFAULT_COST)
            side = math.isqrt(most) // 100 * 100
            kind = "a WebP image" if source_format == "WEBP" else f"this kind of {source_format} image"
            raise ImageRejected(
                f"That image is {width}×{height} px; {kind} can be at most {most / 1e6:.1f} megapixels here "
                f"(about {side}×{side} px). Save it as a JPG, or make it smaller, and try again.",
                f"{source_format} {width}x{height} {im.mode}: over {DECODE_BUDGET_BYTES} bytes to decode",
            )
        # Reduced while decoded by a whole factor of at least 2, to no less than the target where that
        # allows it (then resized below as usual), else a little under it.
        scale = max(width / target[0], height / target[1])
        factor = max(1, min(max(2, math.floor(scale)), min(im.size) // (MIN_SHORT_SIDE + 1)))
        final = _target_size((math.ceil(width / factor), math.ceil(height / factor)), long_side)
        picture = _png_reduced(data, layout, factor, final[0])
        orientation = _orientation(layout.exif or im.info.get("exif"))
    else:
        im.load()
        picture = _workable(im)
        # Read after load(): a PNG's eXIf chunk may follow its pixels. A broken EXIF block is ignored.
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:
            log.debug("unreadable EXIF orientation; assuming upright", exc_info=True)
            orientation = 1
        final = _target_size(picture.size, long_side)
    if picture.size != final:  # resize before turning and flattening: less to copy
        picture = picture.resize(final, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return picture, icc, orientation


# Bytes held while an image of this format is decoded and resized, per pixel (measured: Pillow keeps 4 bytes
# a pixel; its WebP decoder holds the decoded frame three times over).
_DECODE_COST = {"WEBP": 18}
_DEFAULT_COST = 7


def _decode_cost(size: tuple[int, int], source_format: str) -> int:
    return size[0] * size[1] * _DECODE_COST.get(source_format, _DEFAULT_COST)


def _jpeg_scaled(size: tuple[int, int], request: tuple[int, int]) -> tuple[int, int]:
    """The size libjpeg's draft mode decodes at for `request`: the largest 1/1, 1/2, 1/4 or 1/8 scale that
    stays at least as large as the request (Pillow's JpegImageFile.draft)."""
    fit = min(size[0] // request[0], size[1] // request[1])
    scale = next(s for s in (8, 4, 2, 1) if fit >= s)
    return math.ceil(size[0] / scale), math.ceil(size[1] / scale)


def _orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        return int(parsed.get(0x0112, 1))
    except Exception:
        log.debug("unreadable EXIF orientation; assuming upright", exc_info=True)
        return 1


# Large PNGs, band by band ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _PngLayout:
    width: int
    height: int
    mode: str  # L, LA, RGB, RGBA or P: 8 bits per sample, not interlaced
    idat: tuple[memoryview, ...]
    palette: bytes = b""
    transparency: bytes = b""
    exif: bytes | None = None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}  # colour type -> mode, at 8 bits a sample
_BAND_BYTES = 1024 * 1024  # filtered PNG rows decoded at a time


def _png_layout(data: bytes) -> _PngLayout | None:
    """Where a PNG's parts are, when it is one `_png_reduced` can decode (8-bit samples, not interlaced)."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    view = memoryview(data)
    pos, header, idat = len(_PNG_SIGNATURE), None, []
    parts: dict[bytes, bytes] = {}
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        body = view[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind in (b"PLTE", b"tRNS", b"eXIf") and kind not in parts:
            parts[kind] = bytes(body)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        return None
    width, height, depth, colour, _, _, interlace = header
    mode = _PNG_MODES.get(colour)
    if depth != 8 or interlace != 0 or mode is None or (mode == "P" and b"PLTE" not in parts):
        return None
    return _PngLayout(
        width, height, mode, tuple(idat), parts.get(b"PLTE", b""), parts.get(b"tRNS", b""), parts.get(b"eXIf")
    )


def _inflated(chunks: tuple[memoryview, ...], most: int) -> Iterator[bytes]:
    """The zlib stream split over IDAT chunks, inflated at most `most` bytes at a time."""
    inflater = zlib.decompressobj()
    for chunk in chunks:
        pending: bytes | memoryview = chunk
        while True:
            out = inflater.decompress(pending, most)
            if out:
                yield out
            pending = inflater.unconsumed_tail
            if not pending and len(out) < most:
                break
    if tail := inflater.flush():
        yield tail


def _png_reduced(data: bytes, layout: _PngLayout, factor: int, width_to: int | None = None) -> Image.Image:
    """The PNG box-reduced by `factor` (as `Image.reduce` would), holding one band of rows at a time, and
    then resized across to `width_to` (Lanczos; rows are resampled independently, so band by band too).

    Each band of filtered rows goes through Pillow's own PNG row decoder (`zip`), preceded by the last row
    of the band before, unfiltered (filter type 0), which is what the next row's filters refer to. Band
    heights are multiples of `factor`, so the reduced bands join into exactly the reduced picture.
    """
    width, height, mode = layout.width, layout.height, layout.mode
    stride = width * len(mode) + 1  # one filter byte and the samples of a row
    rows_per_band = max(factor, _BAND_BYTES // stride // factor * factor)
    out: Image.Image | None = None
    previous = b""
    pending = bytearray()
    top = 0
    stream = _inflated(layout.idat, _BAND_BYTES)
    while top < height:
        rows = min(rows_per_band, height - top)
        while len(pending) < rows * stride:
            chunk = next(stream, None)
            if chunk is None:
                raise EOFError(f"PNG data ends at row {top + len(pending) // stride} of {height}")
            pending += chunk
        filtered = bytes(pending[: rows * stride])
        del pending[: rows * stride]
        lead = b"\x00" + previous if previous else b""
        band = Image.frombytes(
            mode, (width, rows + bool(previous)), zlib.compress(lead + filtered, 0), "zip", mode
        )
        del filtered, lead
        if previous:
            band = band.crop((0, 1, width, rows + 1))
        previous = band.crop((0, rows - 1, width, rows)).tobytes()
        small = _png_workable(band, layout)
        del band
        if factor > 1:
            small = small.reduce(factor)
        if width_to is not None and small.width != width_to:
            small = small.resize((width_to, small.height), Image.Resampling.LANCZOS)
        if out is None:
            out = Image.new(small.mode, (small.width, math.ceil(height / factor)))
        out.paste(small, (0, top // factor))
        top += rows
    assert out is not None
    return out


def _png_workable(band: Image.Image, layout: _PngLayout) -> Image.Image:
    """A decoded band in the mode the whole-image path gives (`_workable`): palettes and colour keys
    applied, so transparency survives the reduction."""
    if layout.mode == "P":
        colours = len(layout.palette) // 3
        alphas = layout.transparency[:colours].ljust(colours, b"\xff")
        if layout.transparency:
            rgba = b"".join(layout.palette[3 * i : 3 * i + 3] + alphas[i : i + 1] for i in range(colours))
            band.putpalette(rgba, "RGBA")
            return band.convert("RGBA")
        band.putpalette(layout.palette, "RGB")
        return band.convert("RGB")
    if layout.transparency and layout.mode in ("L", "RGB"):
        values = struct.unpack(f">{len(layout.transparency) // 2}H", layout.transparency)
        band.info["transparency"] = values[0] if layout.mode == "L" else tuple(values[:3])
        return band.convert("RGBA")
    return band


def _target_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Scale so the long side is at most `long_side`, without letting the short side fall to 300 px."""
    width, height = size
    longest, shortest = max(width, height), min(width, height)
    if longest <= long_side:
        return size
    scale = max(long_side / longest, (MIN_SHORT_SIDE + 1) / shortest)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


_image_slots = 2
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def limit_concurrent_images(slots: int) -> None:
    """At most `slots` images are normalised at once in this process (IMAGE_MAX_CONCURRENT): each can hold
    tens of MB while it is worked on. Others wait their turn, off the event loop's way."""
    global _image_slots
    _image_slots = max(1, slots)
    _gates.clear()


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(_image_slots)
    return gate


async def normalise_image(data: bytes, **kw: int) -> NormalisedImage:
    """`normalise_image_sync` in a worker thread, at most `limit_concurrent_images` at once."""
    async with _gate():
        return await asyncio.to_thread(normalise_image_sync, data, **kw)


def to_data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


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
        f"That image is over {_limit_mb(max_bytes)}; it must be smaller. "
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


def _remove_paths(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _sync_and_close(f: IO[bytes]) -> None:
    """Flush to the disk before the rename, so a crash cannot leave an empty file under the final name."""
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _close_and_remove(f: IO[bytes] | None, path: Path) -> None:
    if f is not None:
        with contextlib.suppress(OSError):
            f.close()
    _remove_paths((path,))


async def _cleanup_in_thread(fn: Callable[..., object], *args: object) -> None:
    """Run a cleanup function in a thread; it runs to completion even if we are cancelled meanwhile."""
    with contextlib.suppress(Exception):
        await asyncio.shield(asyncio.to_thread(fn, *args))


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
        await _cleanup_in_thread(_close_and_remove, f, part)
        raise
    log.info("downloaded video %s (%d bytes) to %s", where, total, dest)
    return total


# ffmpeg ----------------------------------------------------------------------------------------------
_FFMPEG_MISSING = (
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


async def _run_ffmpeg(args: list[str], *, limit_s: float) -> tuple[int, str]:
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
        raise VideoError("The video couldn't be processed right now; try again shortly.", repr(exc)) from exc
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
                "Processing the video took too long.", f"ffmpeg timed out after {limit_s:.0f}s: {args!r}"
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
        raise VideoError("The video file is unreadable.", f"ffmpeg could not read it: {_last_lines(stderr)}")
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
        raise VideoError("The video file is missing.", f"cannot stat {path}: {exc!r}") from exc
    _, stderr = await _run_ffmpeg(["-i", _ff_path(path)], limit_s=_PROBE_TIMEOUT)  # exits 1: no output given
    info = _parse_probe(stderr, size_bytes)
    if info.duration_s <= 0:
        raise VideoError("The video file is unreadable.", f"{path}: zero duration")
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


def _even(n: float) -> int:
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
    scaled_short, scaled_long = _even(chosen), _even(long_ * chosen / short)
    return (scaled_short, scaled_long) if width < height else (scaled_long, scaled_short)


def _too_big(max_bytes: int, detail: str) -> VideoError:
    return VideoError(
        f"The video is too large for this channel's {_limit_mb(max_bytes)} upload limit, even compressed.",
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
            code, stderr = await _run_ffmpeg(args, limit_s=limit_s)
            if code != 0:
                raise VideoError(
                    "The video couldn't be compressed to fit this channel.",
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
        await _cleanup_in_thread(_remove_paths, (tmp,))
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
            await asyncio.to_thread(_remove_paths, (out,))  # never return a previous attempt's frame
            args = ["-loglevel", "error", "-y", *seek, "-i", _ff_path(video), "-map", "0:V:0"]
            args += ["-an", "-sn", "-dn", "-fps_mode", "passthrough", "-q:v", "2"]
            args += ["-update", "1", "-f", "image2", _ff_path(out)]
            code, stderr = await _run_ffmpeg(args, limit_s=60 if window else 300)
            data = await asyncio.to_thread(_read_if_nonempty, out)
            if code == 0 and data:
                return data
            detail = f"ffmpeg exit {code}, window {window}: {_last_lines(stderr)}"
            log.debug("last frame of %s: %s", video, detail)
        raise VideoError("Couldn't read the last frame of that video.", f"{video}: {detail}")
    finally:
        await _cleanup_in_thread(_remove_paths, (workdir,))


def _read_if_nonempty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
