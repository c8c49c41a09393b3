"""Images in: normalisation of the bytes to the JPEG every job sends (the rules are in `image_rules.py`).

Everything that touches Pillow runs in a worker thread (`normalise_image`), behind a gate that bounds how
many decode at once; very large PNGs are reduced band by band (`bot/core/media/png_bands.py`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import struct
import weakref
import zlib
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .errors import ImageRejected, limit_mb
from .image_rules import (
    DECODE_BUDGET_BYTES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MIN_SHORT_SIDE,
    USE_INSTEAD,
    check_dimensions,
    megabytes,
)
from .png_bands import png_layout, png_reduced

log = logging.getLogger("bot.media")


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
    band, each band reduced as it comes (`png_reduced`); anything else is decoded whole only within
    DECODE_BUDGET_BYTES. Blocking (Pillow): call `normalise_image` from async code.
    """
    if not data:
        raise ImageRejected(f"That file is empty; {USE_INSTEAD}.", "empty image")
    if len(data) >= MAX_IMAGE_BYTES:
        raise ImageRejected(
            f"That image is {megabytes(len(data))}; it must be under {limit_mb(MAX_IMAGE_BYTES)}. "
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
            f"That file is a {name}; {USE_INSTEAD}."
            if name
            else f"That file isn't a readable JPG, PNG or WebP image; {USE_INSTEAD}."
        )
        raise ImageRejected(message, f"unidentified image ({name or 'unknown'})") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(_too_many_pixels(None, max_pixels), str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"That image is damaged or incomplete; {USE_INSTEAD}, or upload it again.", repr(exc)
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
        check_dimensions(width, height)
        try:
            picture, icc, orientation = _decode(im, data, source_format, long_side)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(_too_many_pixels(None, max_pixels), str(exc)) from exc
        except _DECODE_ERRORS as exc:
            raise ImageRejected(
                f"That image is damaged or incomplete; {USE_INSTEAD}, or upload it again.", repr(exc)
            ) from exc

    if orientation in _EXIF_TRANSPOSE:
        picture = picture.transpose(_EXIF_TRANSPOSE[orientation])
    check_dimensions(*((height, width) if orientation in _ROTATED_ORIENTATIONS else (width, height)))
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
        layout = png_layout(data) if source_format == "PNG" else None
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
        picture = png_reduced(data, layout, factor, final[0])
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
