"""The cheap checks answered before anything is spent: option values, the prompt, the server's rules.

Each returns None when fine, or one or two plain sentences saying what was wrong and what to do. Option
values are checked here even when Discord offered only valid choices: a crafted interaction can send any.
"""

from __future__ import annotations

import unicodedata

from .i18n import Text, _
from .models import CAMERA_MOVES
from .settings import DURATIONS, RESOLUTIONS

MAX_PROMPT = 2000
_INVISIBLE = {"Cf", "Cc", "Zl", "Zp"}


def visible_text(prompt: str) -> str:
    """The prompt without zero-width and control characters (which can make an 'empty' prompt look full)."""
    return "".join(ch for ch in prompt if unicodedata.category(ch) not in _INVISIBLE or ch in "\n\t").strip()


def check_options(prompt: str, duration: object, resolution: object, camera: object = None) -> Text | None:
    if not isinstance(prompt, str) or not visible_text(prompt):
        return _(
            "The prompt is empty. Describe the video you want, for example: “a red fox running through snow”."
        )
    if len(prompt) > MAX_PROMPT:
        return _(
            "The prompt is {length} characters; the limit is {limit}. Shorten it and try again.",
            length=len(prompt),
            limit=MAX_PROMPT,
        )
    if duration not in DURATIONS:
        return _("Duration must be 6 or 10 seconds.")
    if resolution not in RESOLUTIONS:
        return _("Resolution must be 768P or 1080P.")
    if resolution == "1080P" and duration == 10:
        return _("1080P is only available for 6-second videos. Choose 6 seconds, or 768P for 10 seconds.")
    if camera is not None and camera not in CAMERA_MOVES:
        return _("That camera move isn't one Hailuo knows. Pick one from the list.")
    return None
