"""Large PNGs, band by band: a reduced image without holding the whole decoded picture in memory."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image


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


def png_layout(data: bytes) -> _PngLayout | None:
    """Where a PNG's parts are, when it is one `png_reduced` can decode (8-bit samples, not interlaced)."""
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


def png_reduced(data: bytes, layout: _PngLayout, factor: int, width_to: int | None = None) -> Image.Image:
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
