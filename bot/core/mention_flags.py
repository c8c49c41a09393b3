"""Reading a mention as a request: is the bot addressed, what is the prompt, which flags were given.

    @Hailuo a fox running through snow --duration 10 --no-expansion

Pure text handling, no Discord objects. Phones often turn `--` into an em or en dash, so `—duration` is
read as `--duration` too (only for flag names we know: a dash in prose stays prose). An unknown `--flag`
is refused rather than silently sent to the model as part of the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .settings import DURATIONS, RESOLUTIONS
from .video_models import MODEL_KEYS

FLAG_HELP = (
    "Use --duration 6|10, --resolution 768P|1080P, --no-expansion or --model " + "|".join(MODEL_KEYS) + "."
)
_DASHES = ("--", "—", "–")  # phones turn -- into these
_FLAG = re.compile(r"^(--|—|–)([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$")
_NAMES = {
    "duration": "duration",
    "d": "duration",
    "resolution": "resolution",
    "res": "resolution",
    "r": "resolution",
    "no-expansion": "no-expansion",
    "no_expansion": "no-expansion",
    "noexpansion": "no-expansion",
    "no-prompt-expansion": "no-expansion",
    "model": "model",
    "m": "model",
}
_NEEDS_VALUE = {"duration", "resolution", "model"}


@dataclass(frozen=True)
class MentionRequest:
    prompt: str
    # None: no flag given (the member's /preferences apply, else the server's defaults)
    duration: int | None = None
    resolution: str | None = None
    prompt_expansion: bool | None = None
    error: str | None = None  # one sentence for the member when the flags can't be read
    model: str | None = None


def _mention_patterns(bot_id: int, role_ids: Iterable[int]) -> re.Pattern[str]:
    roles = "|".join(str(r) for r in role_ids)
    role_part = rf"|<@&(?:{roles})>" if roles else ""
    return re.compile(rf"<@!?{bot_id}>{role_part}")


def addresses_bot(content: str, bot_id: int, role_ids: Iterable[int] = ()) -> bool:
    """True when the text itself mentions the bot (or its managed role, which autocomplete often picks).

    A reply to the bot's message without a mention in the text does not count, even though Discord lists
    the replied-to author among the message's mentions."""
    return _mention_patterns(bot_id, role_ids).search(content) is not None


def _duration(value: str) -> int | None:
    text = value.lower().removesuffix("seconds").removesuffix("sec").removesuffix("s").strip()
    return int(text) if text.isdigit() and int(text) in DURATIONS else None


def _resolution(value: str) -> str | None:
    text = value.upper()
    text = text if text.endswith("P") else text + "P"
    return text if text in RESOLUTIONS else None


def _model(value: str) -> str | None:
    text = value.strip().lower()
    text = text if text.startswith("hailuo") else f"hailuo-{text}"  # `--model 2.3` works too
    return text if text in MODEL_KEYS else None


def parse_mention(content: str, bot_id: int, role_ids: Iterable[int] = ()) -> MentionRequest:
    """The prompt (the text without the bot's mentions and the flags) and the settings the flags chose."""
    text = _mention_patterns(bot_id, role_ids).sub(" ", content)
    parts = re.split(r"(\s+)", text)  # words and the whitespace between them, to keep the prompt's layout
    kept: list[str] = []
    settings: dict[str, object] = {}
    i = 0
    while i < len(parts):
        word = parts[i]
        match = _FLAG.match(word) if word.startswith(_DASHES) else None
        name = _NAMES.get(match.group(2).lower()) if match else None
        if match is None or (name is None and match.group(1) != "--"):
            kept.append(word)
            i += 1
            continue
        if name is None:
            return MentionRequest(prompt="", error=f"I don't know the flag --{match.group(2)}. {FLAG_HELP}")
        value = match.group(3)
        if name in _NEEDS_VALUE and value is None:
            if i + 2 >= len(parts) or not parts[i + 2]:
                return MentionRequest(prompt="", error=f"The --{name} flag needs a value. {FLAG_HELP}")
            value = parts[i + 2]
            i += 2
        i += 1
        if name == "duration":
            seconds = _duration(value or "")
            if seconds is None:
                return MentionRequest(prompt="", error="The --duration flag takes 6 or 10 (seconds).")
            settings["duration"] = seconds
        elif name == "resolution":
            resolution = _resolution(value or "")
            if resolution is None:
                return MentionRequest(prompt="", error="The --resolution flag takes 768P or 1080P.")
            settings["resolution"] = resolution
        elif name == "model":
            model = _model(value or "")
            if model is None:
                choices = ", ".join(MODEL_KEYS)
                return MentionRequest(prompt="", error=f"The --model flag takes one of {choices}.")
            settings["model"] = model
        else:
            settings["prompt_expansion"] = False
    prompt = re.sub(r"[ \t]+", " ", "".join(kept))
    prompt = "\n".join(line.strip() for line in prompt.splitlines()).strip()
    return MentionRequest(prompt=prompt, **settings)  # type: ignore[arg-type]  # each flag set its own type
