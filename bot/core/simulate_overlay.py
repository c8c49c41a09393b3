"""The picture trial mode draws over its videos: a 'SIMULATED' badge and the prompt (Pillow's own font, so
no system fonts are needed)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: object, width: int, max_lines: int) -> list[str]:
    words = " ".join(text.split())
    for chars in range(60, 8, -4):
        lines = textwrap.wrap(words, chars) or [""]
        if all(draw.textlength(line, font=font) <= width for line in lines):  # type: ignore[arg-type]  # any Pillow font
            break
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1].rstrip(" .") + " …"]
    return lines


def draw_overlay(dest: Path, size: tuple[int, int], prompt: str) -> None:
    """A transparent frame with a 'SIMULATED' badge and the prompt in a band at the bottom."""
    w, h = size
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    small = _font(max(10, h // 24))
    text_font = _font(max(10, h // 20))
    badge = "SIMULATED · Hailuo Bot trial mode"
    pad = max(4, h // 60)
    box = draw.textbbox((0, 0), badge, font=small)
    draw.rectangle((0, 0, box[2] + 3 * pad, box[3] + 2 * pad), fill=(200, 40, 40, 220))
    draw.text((pad + pad // 2, pad), badge, font=small, fill=(255, 255, 255, 255))
    lines = _wrap(draw, prompt, text_font, w - 4 * pad, max_lines=3)
    line_h = draw.textbbox((0, 0), "Ag", font=text_font)[3] + pad
    top = h - len(lines) * line_h - 2 * pad
    draw.rectangle((0, top, w, h), fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((2 * pad, top + pad + i * line_h), line, font=text_font, fill=(255, 255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    dest.write_bytes(buf.getvalue())
