"""bot.core.media: image rules and normalisation, streamed downloads, probing, re-encoding and last frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import io
import os
import random
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import imageio_ffmpeg
import psutil
import pytest
from aiohttp import web
from PIL import Image

from bot.core import media
from bot.core.media import (
    FfmpegMissing,
    ImageMeta,
    ImageRejected,
    MediaError,
    VideoError,
    check_image_metadata,
    download_image,
    download_video,
    extract_last_frame,
    ffmpeg_exe,
    image_url_allowed,
    images,
    is_mp4,
    normalise_image,
    normalise_image_sync,
    png_bands,
    probe_video,
    reencode_to_fit,
    to_data_uri,
    video,
)
from bot.core.settings import DISCORD_MEDIA_ORIGINS
from tests.fakes.server import LoopbackServer
from tests.fakes.videos import ffmpeg, make_video, sample_video, sized_video

MiB = 1024 * 1024


# Helpers -----------------------------------------------------------------------------------------------
def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (640, 480),
    mode: str = "RGB",
    color: object = (0, 128, 255),
    **save: object,
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt, **save)  # type: ignore[arg-type]
    return buf.getvalue()


def noise_jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def open_jpeg(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    return im.convert("RGB")


def close_to(pixel: object, expected: tuple[int, int, int], tolerance: int = 24) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def png_declaring(width: int, height: int, *, bit_depth: int = 8, interlace: int = 0) -> bytes:
    """A genuine greyscale PNG of zeros: tiny on disk, huge once decoded (a decompression bomb). With
    `interlace` only the header says so (the rows are not in Adam7 order): enough for the early checks."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\0" * (1 + (width * bit_depth + 7) // 8)
    rows_per_block = max(1, (4 * MiB) // len(row))
    compressor = zlib.compressobj(6)
    parts = []
    for start in range(0, height, rows_per_block):
        parts.append(compressor.compress(row * min(rows_per_block, height - start)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def meta(
    filename: str = "cat.png",
    content_type: str | None = "image/png",
    size: int = 100_000,
    width: int | None = 640,
    height: int | None = 480,
) -> ImageMeta:
    return ImageMeta(filename=filename, content_type=content_type, size=size, width=width, height=height)


def ffmpeg_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with_name = ""
        try:
            with_name = child.name()
        except psutil.Error:
            continue
        if "ffmpeg" in with_name:
            found.append(child)
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# Errors -----------------------------------------------------------------------------------------------
def test_media_error_str_prefers_detail() -> None:
    assert str(MediaError("Try again.", "HTTP 503 from x")) == "HTTP 503 from x"
    err = ImageRejected("Use a PNG.")
    assert str(err) == "Use a PNG."
    assert str(err.user_message) == "Use a PNG."
    assert isinstance(err, MediaError)
    assert issubclass(VideoError, MediaError)
    assert issubclass(FfmpegMissing, MediaError)


# Metadata checks --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "m",
    [
        meta(),
        meta(width=301, height=301),
        meta(width=400, height=1000),  # exactly 2:5
        meta(width=1000, height=400),  # exactly 5:2
        meta(size=media.MAX_IMAGE_BYTES - 1),
        meta("photo.JPG", None),
        meta("photo.jpeg", "application/octet-stream"),
        meta("photo.webp", None),
        meta("noext", "image/jpeg; charset=binary"),
        meta("photo.jpg", "image/jpg"),
        meta(width=None, height=None),  # Discord did not say: the bytes are checked later
    ],
    ids=lambda m: f"{m.filename}-{m.content_type}-{m.size}-{m.width}x{m.height}",
)
def test_metadata_accepted(m: ImageMeta) -> None:
    check_image_metadata(m)


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (meta(width=300, height=300), "That image is 300×300 px; its short side must be over 300 px."),
        (
            meta(width=250, height=900),
            "That image is 250×900 px; its short side must be over 300 px. Try a larger image.",
        ),
        (meta(width=1000, height=300), "short side must be over 300 px"),
        (meta(width=399, height=1000), "aspect ratio must be between 2:5 and 5:2"),  # just taller than 2:5
        (meta(width=1001, height=400), "aspect ratio must be between 2:5 and 5:2"),  # just wider than 5:2
        (meta(size=media.MAX_IMAGE_BYTES), "it must be under 20 MB"),
        (meta(size=30 * MiB), "That image is 30.0 MB; it must be under 20 MB."),
        (
            meta("anim.gif", "image/gif"),
            "That file is a GIF, which the video service can't use. Attach a JPG, PNG or WebP image.",
        ),
        (
            meta("pic.bmp", "image/bmp"),
            "That file is a BMP, which the video service can't use. Attach a JPG, PNG or WebP image.",
        ),
        (
            meta("anim.gif", None),
            "That file is a GIF, which the video service can't use. Attach a JPG, PNG or WebP image.",
        ),
        (
            meta("pic.bmp", "application/octet-stream"),
            "That file is a BMP, which the video service can't use. Attach a JPG, PNG or WebP image.",
        ),
        (meta("pic.png", "image/gif"), "That file is a GIF"),  # the content type wins over the name
        (
            meta("notes.txt", "text/plain"),
            "That file isn't a picture the video service can use. Attach a JPG, PNG or WebP image.",
        ),
        (
            meta("noext", None),
            "That file isn't a picture the video service can use. Attach a JPG, PNG or WebP image.",
        ),
        (meta("shot.heic", "image/heic"), "That file is a HEIC"),
    ],
)
def test_metadata_refused(m: ImageMeta, expected: str) -> None:
    with pytest.raises(ImageRejected) as info:
        check_image_metadata(m)
    assert expected in str(info.value.user_message)


def test_metadata_check_is_instant() -> None:
    start = time.perf_counter()
    for _ in range(10_000):
        check_image_metadata(meta())
    assert time.perf_counter() - start < 0.5


# Real bytes -------------------------------------------------------------------------------------------
def test_normalise_plain_png() -> None:
    result = normalise_image_sync(image_bytes("PNG", (640, 480), color=(0, 128, 255)))
    assert (result.width, result.height, result.source_format) == (640, 480, "PNG")
    im = open_jpeg(result.jpeg)
    assert im.size == (640, 480)
    assert close_to(im.getpixel((10, 10)), (0, 128, 255))


def test_png_named_jpg_is_sniffed() -> None:
    data = image_bytes("PNG", (500, 400))
    check_image_metadata(meta("holiday.jpg", "image/jpeg", len(data), 500, 400))
    result = normalise_image_sync(data)
    assert result.source_format == "PNG"
    assert open_jpeg(result.jpeg).size == (500, 400)


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_wrong_real_format_refused_whatever_the_name(fmt: str, name: str) -> None:
    data = image_bytes(fmt, (500, 400))
    check_image_metadata(meta("innocent.png", "image/png", len(data), 500, 400))  # the metadata lies
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(data)
    assert (
        f"That file is a {name}, which the video service can't use. Attach a JPG, PNG or WebP image."
        == str(info.value.user_message)
    )


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    data = bytearray(image_bytes("PNG", (500, 400), color=(10, 20, 30)))
    idat = data.index(b"IDAT")
    data[idat + 6 : idat + 60] = b"\xff" * 54  # a broken deflate stream
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(b"<html><body>Access denied</body></html>", id="html"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100, id="png-signature-then-garbage"),
        pytest.param(_corrupt_png(), id="png-corrupt-idat"),
        pytest.param(noise_jpeg()[:40_000], id="jpeg-truncated"),
        pytest.param(noise_jpeg()[:300], id="jpeg-header-only"),
        pytest.param(half(image_bytes("PNG", (800, 600), color=(1, 2, 3))), id="png-truncated"),
        pytest.param(half(image_bytes("WEBP", (800, 600), color=(1, 2, 3))), id="webp-truncated"),
    ],
)
def test_corrupt_or_truncated_refused(data: bytes) -> None:
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(data)
    assert str(info.value.user_message)  # a sentence for the member, not a traceback


@pytest.mark.parametrize(
    ("width", "height", "bit_depth"),
    [(30000, 30000, 1), (8000, 7000, 8)],  # Pillow's own bomb error; our 50 Mpx limit before decoding
)
def test_decompression_bomb_refused_quickly(width: int, height: int, bit_depth: int) -> None:
    bomb = png_declaring(width, height, bit_depth=bit_depth)
    assert len(bomb) < 2 * MiB
    start = time.perf_counter()
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(bomb)
    assert time.perf_counter() - start < 0.5
    assert "too many pixels" in str(info.value.user_message)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def every_filter_png(kind: str, size: tuple[int, int] = (301, 211)) -> bytes:
    """A PNG of varied pixels whose rows use all five filter types in turn (encoders pick one or two), in a
    mode ("RGB", "LA", "P", ...) optionally with a tRNS chunk ("P+tRNS", "L+tRNS", "RGB+tRNS"), its IDAT split
    over several chunks."""
    mode, _, extra = kind.partition("+")
    width, height = size
    rng = random.Random(kind)
    base = Image.new("RGB", size)
    base.putdata(
        [((x * 7 + y) % 256, (y * 3) % 256, rng.randrange(256)) for y in range(height) for x in range(width)]
    )
    im = base.quantize(64) if mode == "P" else base.convert(mode)
    bpp = len(mode)
    raw = im.tobytes()
    stride = width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        row, kind_ = raw[y * stride : (y + 1) * stride], y % 5
        out = bytearray([kind_])
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind_]
            out.append((x - predictor) % 256)
        rows.append(bytes(out))
        previous = row
    stream = zlib.compress(b"".join(rows), 6)
    colour = {"L": 0, "RGB": 2, "P": 3, "LA": 4, "RGBA": 6}[mode]
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))]
    if mode == "P":
        palette = im.getpalette() or []
        chunks.append(_png_chunk(b"PLTE", bytes(palette[: 64 * 3])))
    if extra == "tRNS":
        if mode == "P":
            chunks.append(_png_chunk(b"tRNS", bytes(range(0, 250, 8))))  # the first 32 colours see-through
        elif mode == "L":
            chunks.append(_png_chunk(b"tRNS", struct.pack(">H", raw[0])))
        else:
            chunks.append(_png_chunk(b"tRNS", struct.pack(">3H", *raw[:3])))
    third = len(stream) // 3 + 1
    chunks += [_png_chunk(b"IDAT", stream[i : i + third]) for i in range(0, len(stream), third)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _png_chunk(b"IEND", b"")


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("kind", ["RGB", "RGBA", "L", "LA", "P", "P+tRNS", "L+tRNS", "RGB+tRNS"])
def test_a_png_decoded_band_by_band_is_exactly_the_whole_image_reduced(
    kind: str, factor: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(png_bands, "_BAND_BYTES", 5000)  # bands of a few rows: dozens of band joins
    data = every_filter_png(kind)
    layout = png_bands.png_layout(data)
    assert layout is not None
    whole = images._workable(Image.open(io.BytesIO(data)))  # Pillow's own decoder, all at once
    reduced = whole.reduce(factor)
    expected = reduced.resize((61, reduced.height), Image.Resampling.LANCZOS)
    got = png_bands.png_reduced(data, layout, factor, 61)
    assert (got.mode, got.size) == (expected.mode, expected.size)
    assert got.tobytes() == expected.tobytes()


def test_a_7000_px_png_is_used_at_full_quality() -> None:
    im = Image.new("RGB", (7000, 7000), (0, 160, 0))
    im.paste((255, 255, 0), (5250, 0, 7000, 7000))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    assert len(buf.getvalue()) < 1 * MiB  # small on disk, 196 MB once decoded whole
    result = normalise_image_sync(buf.getvalue())
    assert (result.width, result.height, result.source_format) == (1920, 1920, "PNG")
    out = open_jpeg(result.jpeg)
    assert close_to(out.getpixel((100, 960)), (0, 160, 0))
    assert close_to(out.getpixel((1800, 960)), (255, 255, 0))


PEAK_SCRIPT = """
import io, sys
from PIL import Image
from bot.core.media import normalise_image_sync
im = Image.new("RGB", (7000, 7000), (30, 120, 200))
im.paste((200, 30, 30), (0, 0, 3500, 3500))
buf = io.BytesIO(); im.save(buf, "PNG"); del im
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) * 1024
def reset():
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM starts again from the current RSS
reset(); before = hwm()
normalise_image_sync(buf.getvalue())
print(hwm() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_7000_px_png_takes_tens_not_hundreds_of_megabytes() -> None:
    """Decoded whole it would hold 196 MB (440 MB with the copies); band by band it stays near 40 MB."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    growth = int(done.stdout.strip())
    assert growth < 64 * MiB, f"peak grew by {growth / MiB:.0f} MB"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (lambda: image_bytes("WEBP", (3000, 2000)), "a WebP image can be at most 3.7 megapixels"),
        (lambda: image_bytes("PNG", (4000, 3000), mode="I;16", color=0), "this kind of PNG image can be"),
        (lambda: png_declaring(3200, 3200, interlace=1), "this kind of PNG image can be"),
    ],
    ids=["webp", "16-bit png", "interlaced png"],
)
def test_an_image_that_can_only_be_decoded_whole_is_refused_past_the_memory_budget(
    data: Callable[[], bytes], expected: str
) -> None:
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(data())
    assert expected in str(info.value.user_message)
    assert "Save it as a JPG" in str(info.value.user_message)


def test_the_largest_size_accepted_is_named() -> None:
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(png_declaring(8000, 7000))
    assert "the largest accepted is 50 megapixels (about 7000×7000 px)" in str(info.value.user_message)


async def test_at_most_the_configured_number_of_images_are_prepared_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inside, most = 0, 0
    release = threading.Event()
    lock = threading.Lock()

    def held(data: bytes, **kw: int) -> str:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        release.wait(10)
        with lock:
            inside -= 1
        return "done"

    monkeypatch.setattr(images, "normalise_image_sync", held)  # the Pillow work itself, held open
    media.limit_concurrent_images(2)
    try:
        work = [asyncio.create_task(normalise_image(b"x")) for _ in range(6)]
        async with asyncio.timeout(10):
            while most < 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a third would have started by now
        assert most == 2
        release.set()
        assert await asyncio.gather(*work) == ["done"] * 6
        assert most == 2
    finally:
        release.set()
        media.limit_concurrent_images(2)


def test_image_over_20mb_refused() -> None:
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(b"\xff\xd8\xff" + bytes(media.MAX_IMAGE_BYTES))
    assert "under 20 MB" in str(info.value.user_message)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1, 1000), "short side must be over 300 px"),
        ((300, 500), "short side must be over 300 px"),
        ((320, 1000), "aspect ratio"),
        ((1000, 399), "aspect ratio"),
    ],
)
def test_real_dimensions_checked(size: tuple[int, int], expected: str) -> None:
    with pytest.raises(ImageRejected) as info:
        normalise_image_sync(image_bytes("PNG", size))
    assert expected in str(info.value.user_message)


def test_exif_rotated_jpeg_comes_out_upright() -> None:
    stored = Image.new("RGB", (600, 400), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 100, 100))  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    exif[0x010F] = "TestCam"  # Make: must not survive (privacy)
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)

    result = normalise_image_sync(buf.getvalue())
    assert (result.width, result.height) == (400, 600)
    im = Image.open(io.BytesIO(result.jpeg))
    assert not im.getexif()  # no orientation left to apply twice, no camera data
    rgb = im.convert("RGB")
    assert rgb.size == (400, 600)
    assert close_to(rgb.getpixel((380, 20)), (255, 0, 0))  # stored top-left is now top-right
    assert close_to(rgb.getpixel((20, 20)), (0, 0, 255))
    assert close_to(rgb.getpixel((20, 580)), (0, 0, 255))


def test_exif_rotation_applies_before_dimension_rules() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = image_bytes("JPEG", (1000, 400), exif=exif)  # 5:2 stored, 2:5 upright: fine either way
    result = normalise_image_sync(data)
    assert (result.width, result.height) == (400, 1000)


def test_rgba_png_flattened_onto_white() -> None:
    im = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 200, 400))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    result = normalise_image_sync(buf.getvalue())
    out = open_jpeg(result.jpeg)
    assert Image.open(io.BytesIO(result.jpeg)).mode == "RGB"
    assert close_to(out.getpixel((50, 200)), (255, 0, 0))
    assert close_to(out.getpixel((350, 200)), (255, 255, 255))


def test_palette_png_with_transparency_flattened() -> None:
    im = Image.new("P", (400, 400), 0)
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    im.paste(1, (0, 0, 200, 400))
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0)
    out = open_jpeg(normalise_image_sync(buf.getvalue()).jpeg)
    assert close_to(out.getpixel((50, 50)), (0, 200, 0))
    assert close_to(out.getpixel((350, 50)), (255, 255, 255))


def test_sixteen_bit_grey_png_keeps_its_tone() -> None:
    out = open_jpeg(normalise_image_sync(image_bytes("PNG", (400, 400), mode="I;16", color=32768)).jpeg)
    assert close_to(out.getpixel((10, 10)), (128, 128, 128), tolerance=4)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_image_resized(fmt: str) -> None:
    im = Image.new("RGB", (4000, 3000), (0, 160, 0))
    im.paste((255, 255, 0), (3000, 0, 4000, 3000))
    buf = io.BytesIO()
    im.save(buf, fmt)
    result = normalise_image_sync(buf.getvalue())
    assert (result.width, result.height) == (1920, 1440)
    out = open_jpeg(result.jpeg)
    assert out.size == (1920, 1440)
    assert close_to(out.getpixel((100, 700)), (0, 160, 0))
    assert close_to(out.getpixel((1800, 700)), (255, 255, 0))
    assert len(result.jpeg) < media.MAX_IMAGE_BYTES


def test_resize_respects_long_side_argument_and_aspect() -> None:
    result = normalise_image_sync(image_bytes("PNG", (2500, 1000)), long_side=1280)
    assert (result.width, result.height) == (1280, 512)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_image_gives_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (400, 400), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 3
    result = normalise_image_sync(buf.getvalue())
    assert result.source_format == fmt
    assert close_to(open_jpeg(result.jpeg).getpixel((200, 200)), (255, 0, 0))


async def test_normalise_image_async_wrapper() -> None:
    result = await normalise_image(image_bytes("WEBP", (800, 600)), long_side=600)
    assert (result.width, result.height, result.source_format) == (600, 450, "WEBP")


def test_resize_never_takes_short_side_to_300() -> None:
    result = normalise_image_sync(image_bytes("PNG", (800, 600)), long_side=400)
    assert (result.width, result.height) == (401, 301)


def test_data_uri_round_trip() -> None:
    jpeg = normalise_image_sync(image_bytes("PNG", (400, 400))).jpeg
    uri = to_data_uri(jpeg)
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri[len(prefix) :], validate=True) == jpeg


# Loopback server --------------------------------------------------------------------------------------
VIDEO_12MB = 12 * MiB
VIDEO_60MB = 60 * MiB


@pytest.fixture(scope="module")
def png_500() -> bytes:
    return image_bytes("PNG", (500, 400))


FILES = web.AppKey("files", dict[str, Path])
RELEASE = web.AppKey("release", asyncio.Event)  # set at teardown so stalled handlers end at once


async def _endless(request: web.Request) -> web.StreamResponse:
    """Chunked, no Content-Length, never ends: only a client-side cap stops it."""
    resp = web.StreamResponse()
    resp.content_type = request.match_info["ctype"].replace("_", "/")
    await resp.prepare(request)
    block = b"\x00\x00\x00\x18ftypisom" + bytes(64 * 1024 - 12)
    with contextlib.suppress(ConnectionError):
        while not request.app[RELEASE].is_set():
            await resp.write(block)
    return resp


async def _stall(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"\x00\x00\x00\x18ftypisom" + bytes(4096))
    await request.app[RELEASE].wait()
    return resp


async def _slow(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()
    return web.Response(body=b"late")


async def _chunked_file(request: web.Request) -> web.StreamResponse:
    path = request.app[FILES][request.match_info["name"]]
    resp = web.StreamResponse()
    resp.content_type = "video/mp4"
    await resp.prepare(request)
    with open(path, "rb") as f:
        while block := f.read(256 * 1024):
            await resp.write(block)
    return resp


def _make_app(png: bytes, files: dict[str, Path]) -> web.Application:
    app = web.Application()
    app[FILES] = files
    app[RELEASE] = asyncio.Event()

    async def png_handler(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def file_handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(request.app[FILES][request.match_info["name"]])

    async def html_handler(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>AccessDenied</body></html>" * 200, content_type="text/html")

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=404, text="NoSuchKey")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def teapot(_: web.Request) -> web.Response:
        return web.Response(status=418, text="internal service says hello")

    app.router.add_get("/image.png", png_handler)
    app.router.add_get("/files/{name}", file_handler)
    app.router.add_get("/chunked/{name}", _chunked_file)
    app.router.add_get("/endless/{ctype}", _endless)
    app.router.add_get("/stall.mp4", _stall)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/expired.html", html_handler)
    app.router.add_get("/gone", gone)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/teapot", teapot)
    return app


@pytest.fixture
async def server(png_500: bytes) -> AsyncIterator[LoopbackServer]:
    files = {
        "sample.mp4": sample_video(),
        "v12.mp4": sized_video(VIDEO_12MB),
        "v60.mp4": sized_video(VIDEO_60MB),
    }
    app = _make_app(png_500, files)
    async with LoopbackServer(app) as srv:
        yield srv
        app[RELEASE].set()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# download_image ---------------------------------------------------------------------------------------
async def test_download_image(server: LoopbackServer, session: aiohttp.ClientSession, png_500: bytes) -> None:
    assert await download_image(session, f"{server.url}/image.png") == png_500


async def test_download_image_cap_by_content_length(
    server: LoopbackServer, session: aiohttp.ClientSession, png_500: bytes
) -> None:
    with pytest.raises(ImageRejected):
        await download_image(session, f"{server.url}/image.png", max_bytes=len(png_500) - 1)


async def test_download_image_cap_stops_an_endless_stream(
    server: LoopbackServer, session: aiohttp.ClientSession
) -> None:
    start = time.perf_counter()
    with pytest.raises(ImageRejected) as info:
        await download_image(session, f"{server.url}/endless/image_png", max_bytes=2 * MiB)
    assert time.perf_counter() - start < 5
    assert "over 2 MB" in str(info.value.user_message)


async def test_download_image_404(server: LoopbackServer, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ImageRejected) as info:
        await download_image(session, f"{server.url}/gone?sig=secret")
    assert str(info.value.user_message).startswith("Couldn't download the image")
    assert "Try uploading it again" in str(info.value.user_message)
    assert "404" in info.value.detail
    assert "secret" not in info.value.detail  # signed query strings stay out of logs


@pytest.mark.parametrize("path", ["/gone?sig=secret", "/teapot"])
async def test_the_member_is_never_told_what_the_remote_server_answered(
    server: LoopbackServer, session: aiohttp.ClientSession, path: str
) -> None:
    with pytest.raises(ImageRejected) as info:
        await download_image(session, server.url + path)
    assert not any(ch.isdigit() for ch in str(info.value.user_message))  # no status, no probing oracle
    assert "hello" not in str(info.value.user_message)


async def test_image_fetches_follow_no_redirect_off_the_allowed_hosts(
    server: LoopbackServer, session: aiohttp.ClientSession, png_500: bytes
) -> None:
    elsewhere = web.Application()
    hits: list[str] = []

    async def internal(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=png_500, content_type="image/png")

    elsewhere.router.add_get("/{tail:.*}", internal)
    async with LoopbackServer(elsewhere) as other:
        off = f"{server.url}/redirect?to={other.url}/admin.png"
        for origins in (None, [server.url]):
            with pytest.raises(ImageRejected) as info:
                await download_image(session, off, origins=origins)
            assert "isn't stored on Discord" in str(info.value.user_message)
        with pytest.raises(ImageRejected):
            await download_image(session, f"{other.url}/admin.png", origins=[server.url])
        assert hits == []
        on = f"{server.url}/redirect?to=/image.png"
        assert await download_image(session, on, origins=[server.url]) == png_500  # on the same host: fine
        assert await download_image(session, f"{other.url}/x.png", origins=[other.url]) == png_500


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1", True),
        ("https://media.discordapp.net/attachments/1/2/a.png", True),
        ("https://images-ext-1.discordapp.net/external/abc/https/example.com/a.png", True),
        ("https://CDN.DiscordApp.com/a.png", True),
        ("http://cdn.discordapp.com/a.png", False),  # https only
        ("https://cdn.discordapp.com:8443/a.png", False),
        ("https://cdn.discordapp.com@evil.example/a.png", False),
        ("https://evil.example/cdn.discordapp.com/a.png", False),
        ("https://cdn.discordapp.com.evil.example/a.png", False),
        ("https://images-ext-.discordapp.net/a.png", False),
        ("https://images-ext-1.evil.example/.discordapp.net", False),
        ("https://127.0.0.1/a.png", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_images_come_only_from_discords_media_hosts(url: str, allowed: bool) -> None:
    assert image_url_allowed(url, DISCORD_MEDIA_ORIGINS) is allowed


async def test_download_image_timeout(server: LoopbackServer, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ImageRejected) as info:
        await download_image(session, f"{server.url}/slow", timeout=0.3)
    assert "in time" in str(info.value.user_message)


async def test_download_image_connection_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ImageRejected):
        await download_image(session, "http://127.0.0.1:9/nothing.png", timeout=5)


# download_video ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["files", "chunked"])
async def test_download_video(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path, route: str
) -> None:
    src = sized_video(VIDEO_12MB)
    dest = tmp_path / "result.mp4"
    n = await download_video(session, f"{server.url}/{route}/v12.mp4", dest, chunk_size=64 * 1024)
    assert n == src.stat().st_size == dest.stat().st_size
    assert sha256(dest) == sha256(src)
    assert is_mp4(dest)
    assert leftovers(tmp_path) == ["result.mp4"]


async def test_download_video_not_mp4(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoError) as info:
        await download_video(session, f"{server.url}/expired.html", tmp_path / "r.mp4")
    assert "isn't an MP4" in str(info.value.user_message)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("route", ["files", "chunked", "endless/video_mp4"])
async def test_download_video_over_max_bytes(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path, route: str
) -> None:
    url = f"{server.url}/{route}" if route.startswith("endless") else f"{server.url}/{route}/v12.mp4"
    with pytest.raises(VideoError) as info:
        await download_video(session, url, tmp_path / "r.mp4", max_bytes=3 * MiB)
    assert "too large" in str(info.value.user_message)
    assert leftovers(tmp_path) == []


async def test_download_video_404(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoError) as info:
        await download_video(session, f"{server.url}/gone", tmp_path / "r.mp4")
    assert "HTTP 404" in str(info.value.user_message)
    assert leftovers(tmp_path) == []


async def test_download_video_timeout(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(VideoError) as info:
        await download_video(session, f"{server.url}/stall.mp4", tmp_path / "r.mp4", timeout=0.5)
    assert "too long" in str(info.value.user_message)
    assert leftovers(tmp_path) == []


async def test_download_video_cancelled_leaves_nothing(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    task = asyncio.create_task(download_video(session, f"{server.url}/stall.mp4", tmp_path / "r.mp4"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)  # the clean-up thread finishes even though the task was cancelled
    assert leftovers(tmp_path) == []


async def test_download_video_memory_stays_bounded(
    server: LoopbackServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A ~60 MB download must not raise the peak RSS by 30 MB (sampled from a thread, every 2 ms)."""
    proc = psutil.Process()
    # Warm up: connection pool, worker threads and the code paths are in the baseline.
    await download_video(session, f"{server.url}/files/sample.mp4", tmp_path / "warm.mp4")
    gc.collect()
    baseline = proc.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        n = await download_video(session, f"{server.url}/chunked/v60.mp4", tmp_path / "big.mp4")
    finally:
        done.set()
        sampler.join(5)
    assert n == sized_video(VIDEO_60MB).stat().st_size > 50 * MiB
    growth = peak - baseline
    print(f"RSS growth while downloading {n / MiB:.0f} MiB: {growth / MiB:.1f} MiB")
    assert growth < 30 * MiB


def test_is_mp4(tmp_path: Path) -> None:
    assert is_mp4(sample_video())
    html = tmp_path / "x.mp4"
    html.write_bytes(b"<html></html>")
    assert not is_mp4(html)
    assert not is_mp4(tmp_path / "missing.mp4")


# ffmpeg -----------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_ffmpeg_lookup() -> Iterator[None]:
    video._resolve_ffmpeg.cache_clear()
    yield
    video._resolve_ffmpeg.cache_clear()


@pytest.mark.usefixtures("fresh_ffmpeg_lookup")
def test_ffmpeg_exe_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundled = imageio_ffmpeg.get_ffmpeg_exe()
    monkeypatch.delenv("FFMPEG_BINARY", raising=False)
    assert Path(ffmpeg_exe()).resolve() == Path(bundled).resolve()

    link = tmp_path / "my-ffmpeg"
    link.symlink_to(bundled)
    monkeypatch.setenv("FFMPEG_BINARY", str(link))
    assert ffmpeg_exe() == str(link)

    def broken() -> str:
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", broken)
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "nope"))
    with pytest.raises(FfmpegMissing) as info:
        ffmpeg_exe()
    assert "ffmpeg is missing" in str(info.value.user_message)
    assert "FFMPEG_BINARY" in info.value.detail  # the operator's instructions go to the log


@pytest.fixture(scope="module")
def video_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("av") / "av.mp4"
    subprocess.run(
        [
            ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=24:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(dest),
        ],
        check=True,
    )
    return dest


async def test_probe_video() -> None:
    path = sample_video()
    info = await probe_video(path)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert (info.width, info.height, info.codec, info.has_audio) == (320, 240, "h264", False)
    assert info.size_bytes == path.stat().st_size


async def test_probe_video_with_audio(video_with_audio: Path) -> None:
    info = await probe_video(video_with_audio)
    assert info.has_audio
    assert (info.width, info.height) == (640, 360)


async def test_probe_rejects_non_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_text("<html>not a video</html>")
    with pytest.raises(VideoError):
        await probe_video(junk)
    with pytest.raises(VideoError):
        await probe_video(tmp_path / "missing.mp4")


def test_parse_probe_ignores_hex_tags_and_applies_rotation() -> None:
    stderr = (
        "  Duration: 00:01:02.50, start: 0.000000, bitrate: 900 kb/s\n"
        "  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv), 1920x1080 [SAR 1:1], "
        "30 fps (default)\n"
        "    Side data:\n      displaymatrix: rotation of -90.00 degrees\n"
        "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo\n"
    )
    info = video._parse_probe(stderr, 123)
    assert info == media.VideoInfo(62.5, 1080, 1920, "hevc", True, 123)


async def test_reencode_to_fit(tmp_path: Path) -> None:
    src = sized_video(VIDEO_12MB)
    assert src.stat().st_size > 10 * MiB
    before = await probe_video(src)
    limit = 5 * MiB
    dst = tmp_path / "small.mp4"
    start = time.perf_counter()
    after = await reencode_to_fit(src, dst, limit, info=before)
    elapsed = time.perf_counter() - start
    print(f"re-encode {before.size_bytes / MiB:.1f} -> {after.size_bytes / MiB:.2f} MiB in {elapsed:.1f}s")
    assert after.size_bytes == dst.stat().st_size <= limit
    assert after.codec == "h264"
    assert after.duration_s == pytest.approx(before.duration_s, abs=0.3)
    assert (after.width, after.height) == (640, 360)  # enough bits per pixel: no downscale
    assert is_mp4(dst)
    assert leftovers(tmp_path) == ["small.mp4"]
    assert ffmpeg_children() == []


async def test_reencode_keeps_audio(video_with_audio: Path, tmp_path: Path) -> None:
    dst = tmp_path / "tiny.mp4"
    after = await reencode_to_fit(video_with_audio, dst, 150_000)
    assert after.size_bytes <= 150_000
    assert after.has_audio
    assert (after.width, after.height) == (640, 360)  # already at the bottom rung


async def test_reencode_downscales_hd_when_bitrate_is_low(tmp_path: Path) -> None:
    src = make_video(tmp_path / "hd.mp4", seconds=2.0, size=(1280, 720))
    after = await reencode_to_fit(src, tmp_path / "out.mp4", 100_000)
    assert (after.width, after.height) == (640, 360)
    assert after.size_bytes <= 100_000


async def test_reencode_impossible_fit_raises(tmp_path: Path) -> None:
    with pytest.raises(VideoError) as info:
        await reencode_to_fit(sample_video(), tmp_path / "x.mp4", 20_000)
    assert "upload limit" in str(info.value.user_message)
    assert leftovers(tmp_path) == []


async def test_reencode_cancelled_kills_ffmpeg_and_cleans_up(tmp_path: Path) -> None:
    src = sized_video(VIDEO_60MB)
    task = asyncio.create_task(reencode_to_fit(src, tmp_path / "out.mp4", 8 * MiB))
    for _ in range(100):  # wait until ffmpeg is actually encoding
        await asyncio.sleep(0.05)
        if any(p.name.endswith(".part") for p in tmp_path.iterdir()):
            break
    assert ffmpeg_children()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    assert ffmpeg_children() == []
    assert leftovers(tmp_path) == []


async def test_run_ffmpeg_timeout_kills_process() -> None:
    start = time.perf_counter()
    with pytest.raises(VideoError) as info:
        await media.run_ffmpeg(["-f", "lavfi", "-i", "testsrc", "-f", "null", "-"], limit_s=0.5)
    assert time.perf_counter() - start < 5
    assert "took too long" in str(info.value.user_message)
    assert ffmpeg_children() == []


def _lavfi_video(dest: Path, graph: str) -> Path:
    args = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[v]"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(dest)]
    subprocess.run(args, check=True)
    return dest


async def test_extract_last_frame_is_the_very_last(tmp_path: Path) -> None:
    """Two seconds of moving test pattern, then one single red frame: only the true last frame is red."""
    graph = (
        "testsrc=size=320x240:rate=24:duration=2[a];"
        "color=c=red:size=320x240:rate=24:duration=1,trim=end_frame=1[b];[a][b]concat=n=2:v=1[v]"
    )
    video = _lavfi_video(tmp_path / "ends-red.mp4", graph)
    frame = Image.open(io.BytesIO(await extract_last_frame(video)))
    assert frame.format in {"JPEG", "PNG"}
    rgb = frame.convert("RGB")
    assert rgb.size == (320, 240)
    for xy in ((10, 10), (160, 120), (310, 230)):
        assert close_to(rgb.getpixel(xy), (255, 0, 0), tolerance=30)


@pytest.mark.parametrize(
    "graph",
    [
        pytest.param(
            "color=c=green:size=320x240:rate=1:duration=3[a];color=c=red:size=320x240:rate=1:duration=1[b];"
            "[a][b]concat=n=2:v=1[v]",
            id="one-frame-per-second",  # the last frame starts a whole second before the end
        ),
        pytest.param(
            "color=c=green:size=320x240:rate=24:duration=0.2[a];"
            "color=c=red:size=320x240:rate=24:duration=1,trim=end_frame=1[b];[a][b]concat=n=2:v=1[v]",
            id="shorter-than-the-window",
        ),
    ],
)
async def test_extract_last_frame_unusual_timing(tmp_path: Path, graph: str) -> None:
    video = _lavfi_video(tmp_path / "v.mp4", graph)
    rgb = Image.open(io.BytesIO(await extract_last_frame(video))).convert("RGB")
    assert close_to(rgb.getpixel((160, 120)), (255, 0, 0), tolerance=30)


async def test_extract_last_frame_of_image_video(tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    Image.new("RGB", (320, 240), (0, 0, 255)).save(still)
    video = make_video(tmp_path / "still.mp4", seconds=1.0, first_frame=still)
    rgb = Image.open(io.BytesIO(await extract_last_frame(video))).convert("RGB")
    assert close_to(rgb.getpixel((160, 120)), (0, 0, 255), tolerance=30)
    assert leftovers(tmp_path) == ["still.mp4", "still.png"]


async def test_extract_last_frame_of_non_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nope" * 100)
    with pytest.raises(VideoError):
        await extract_last_frame(junk)


async def test_event_loop_stays_responsive_during_media_work(tmp_path: Path) -> None:
    """Pillow in threads and ffmpeg as subprocesses: a 10 ms ticker is never held up for long."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - before - 0.01)

    big = noise_jpeg((4000, 3000))
    noisy, small = sized_video(VIDEO_12MB), sample_video()  # made (synchronously) before measuring
    tick = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.05)
        results = await asyncio.gather(
            normalise_image(big),
            reencode_to_fit(noisy, tmp_path / "fit.mp4", 4 * MiB),
            extract_last_frame(small),
            probe_video(small),
        )
    finally:
        stop.set()
        await tick
    assert results[0].width == 1920
    print(f"worst event-loop lag during media work: {worst * 1000:.0f} ms")
    assert worst < 0.1
