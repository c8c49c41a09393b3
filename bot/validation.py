"""The cheap checks answered before anything is spent: option values, the prompt, the server's rules.

Each returns None when fine, or one or two plain sentences saying what was wrong and what to do. Option
values are checked here even when Discord offered only valid choices: a crafted interaction can send any.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .models import CAMERA_MOVES
from .settings import DURATIONS, RESOLUTIONS

MAX_PROMPT = 2000
_INVISIBLE = {"Cf", "Cc", "Zl", "Zp"}


def visible_text(prompt: str) -> str:
    """The prompt without zero-width and control characters (which can make an 'empty' prompt look full)."""
    return "".join(ch for ch in prompt if unicodedata.category(ch) not in _INVISIBLE or ch in "\n\t").strip()


def check_options(prompt: str, duration: object, resolution: object, camera: object = None) -> str | None:
    if not isinstance(prompt, str) or not visible_text(prompt):
        return (
            "The prompt is empty. Describe the video you want, for example: “a red fox running through snow”."
        )
    if len(prompt) > MAX_PROMPT:
        return f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}. Shorten it and try again."
    if duration not in DURATIONS:
        return "Duration must be 6 or 10 seconds."
    if resolution not in RESOLUTIONS:
        return "Resolution must be 768P or 1080P."
    if resolution == "1080P" and duration == 10:
        return "1080P is only available for 6-second videos. Choose 6 seconds, or 768P for 10 seconds."
    if camera is not None and camera not in CAMERA_MOVES:
        return "That camera move isn't one Hailuo knows. Pick one from the list."
    return None


def blocklist_hit(prompt: str, entries: Iterable[str]) -> str | None:
    """The first blocklist entry the prompt matches: plain words (whole word, any case) or `re:` patterns."""
    text = visible_text(prompt).casefold()
    for entry in entries:
        if entry.startswith("re:"):
            try:
                if _safe_search(entry[3:], text):
                    return entry
            except re.error:
                continue
        elif re.search(rf"(?<!\w){re.escape(entry.casefold())}(?!\w)", text):
            return entry
    return None


def _safe_search(pattern: str, text: str) -> bool:
    """Moderators' patterns run on prompts of at most 2000 characters, and are screened when saved."""
    return re.search(pattern, text[:MAX_PROMPT], re.IGNORECASE) is not None
