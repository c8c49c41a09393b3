"""Small builders shared by tests: images and job requests."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bot.core.models import JobRequest


def png(width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def request(prompt: str = "a cat surfing", **kw: Any) -> JobRequest:
    return JobRequest(guild_id=1, channel_id=2, user_id=3, prompt=prompt, **kw)
