"""A member's own defaults for new videos (/preferences), and how they meet the options of one request.

Rules, in one place:
- An option the member gives on a command (or a mention flag) always wins; a preference fills only what they
  left out; what neither sets is the server's default (6 s, 768P, prompt expansion on, the server's model).
- 10 s with 1080P can't be made: such a pair is refused as a preference, and when an explicit option meets
  a preference it can't go with (`duration:10` against a 1080P preference), the preference gives way.
- A preferred model is used only where it can serve the request and the server allows it. Hailuo 2.3 Fast
  needs an image, so as a default it applies to videos from an image; a video from a prompt alone (or one
  with a last frame the model can't take) uses the server's default model instead, rather than being refused.
  A model the server switched off after it was chosen is skipped the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import video_models
from .settings import DURATIONS, RESOLUTIONS

DEFAULT_DURATION = 6
DEFAULT_RESOLUTION = "768P"
PREF_COLUMNS = ("duration", "resolution", "model", "prompt_expansion", "dm_results")

# What members read (plain short English, kept together for translation).
TEN_NEEDS_768 = "10-second videos are 768P only, so choose 768P first and then 10 seconds."
HD_NEEDS_SIX = "1080P videos are 6 seconds only, so choose 6 seconds first and then 1080P."
MODEL_OFF = "This server doesn't allow {name}. Choose {allowed}, or keep the server default."
UNKNOWN_CHOICE = "That choice isn't available. Open /preferences again."
FAST_NOTE = (
    "{name} needs an image, so it is your default for videos from an image; videos from a prompt alone "
    "use {fallback}."
)
SWITCHED_OFF_NOTE = "This server has switched {name} off, so your videos use {fallback} until it is back."


@dataclass(frozen=True)
class Preferences:
    """None everywhere means "the server's default"."""

    duration: int | None = None
    resolution: str | None = None
    model: str | None = None
    prompt_expansion: bool | None = None
    dm_results: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> Preferences:
        if not row:
            return cls()
        expansion = row.get("prompt_expansion")
        return cls(
            duration=row.get("duration"),
            resolution=row.get("resolution"),
            model=row.get("model"),
            prompt_expansion=None if expansion is None else bool(expansion),
            dm_results=bool(row.get("dm_results")),
        )

    def columns(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "resolution": self.resolution,
            "model": self.model,
            "prompt_expansion": None if self.prompt_expansion is None else int(self.prompt_expansion),
            "dm_results": int(self.dm_results),
        }


def change(
    prefs: Preferences, field: str, value: str, allowed: Iterable[str]
) -> tuple[Preferences, str | None]:
    """`prefs` with one field set from a select's value ("default" clears it), or the unchanged prefs and
    the one sentence saying why not. Values come from a member's client: anything unexpected is refused."""
    allowed = tuple(allowed)
    if value == "default":
        if field not in ("duration", "resolution", "model", "prompt_expansion"):
            return prefs, UNKNOWN_CHOICE
        return replace(prefs, **{field: None}), None  # type: ignore[arg-type]  # the four optional fields
    if field == "duration":
        if not value.isdigit() or int(value) not in DURATIONS:
            return prefs, UNKNOWN_CHOICE
        if int(value) == 10 and prefs.resolution == "1080P":
            return prefs, TEN_NEEDS_768
        return replace(prefs, duration=int(value)), None
    if field == "resolution":
        if value not in RESOLUTIONS:
            return prefs, UNKNOWN_CHOICE
        if value == "1080P" and prefs.duration == 10:
            return prefs, HD_NEEDS_SIX
        return replace(prefs, resolution=value), None
    if field == "model":
        model = video_models.MODELS.get(value)
        if model is None:
            return prefs, UNKNOWN_CHOICE
        if value not in allowed:
            return prefs, MODEL_OFF.format(name=model.name, allowed=video_models.names(allowed))
        return replace(prefs, model=value), None
    if field == "prompt_expansion":
        if value not in ("on", "off"):
            return prefs, UNKNOWN_CHOICE
        return replace(prefs, prompt_expansion=value == "on"), None
    return prefs, UNKNOWN_CHOICE


@dataclass(frozen=True)
class Chosen:
    """The settings one request goes with."""

    duration: int
    resolution: str
    prompt_expansion: bool
    model: str


def resolve(
    prefs: Preferences,
    *,
    allowed: Iterable[str],
    has_image: bool,
    has_last_frame: bool = False,
    duration: int | None = None,
    resolution: str | None = None,
    prompt_expansion: bool | None = None,
    model: str | None = None,
) -> Chosen:
    """The request's settings: given options, else the member's preferences, else the defaults."""
    allowed = tuple(allowed)
    chosen_duration = duration if duration is not None else prefs.duration or DEFAULT_DURATION
    chosen_resolution = resolution if resolution is not None else prefs.resolution or DEFAULT_RESOLUTION
    if (chosen_duration, chosen_resolution) == (10, "1080P"):  # a preference gives way to a given option
        if duration is not None and resolution is None:
            chosen_resolution = DEFAULT_RESOLUTION
        elif resolution is not None and duration is None:
            chosen_duration = DEFAULT_DURATION
    expansion = prompt_expansion if prompt_expansion is not None else prefs.prompt_expansion
    return Chosen(
        duration=chosen_duration,
        resolution=chosen_resolution,
        prompt_expansion=True if expansion is None else expansion,
        model=model or preferred_model(prefs, allowed, has_image, has_last_frame),
    )


def preferred_model(
    prefs: Preferences, allowed: tuple[str, ...], has_image: bool, has_last_frame: bool
) -> str:
    """The member's model where it can serve this request here, else the server's default for it."""
    if prefs.model and video_models.refusal(prefs.model, has_image, has_last_frame, allowed) is None:
        return prefs.model
    return video_models.default_model(allowed, has_image, has_last_frame)


def model_note(prefs: Preferences, allowed: Iterable[str]) -> str | None:
    """One sentence on when the preferred model is not what a video gets, or None."""
    allowed = tuple(allowed)
    if prefs.model is None or prefs.model not in video_models.MODELS:
        return None
    name = video_models.display_name(prefs.model)
    if prefs.model not in allowed:
        fallback = video_models.display_name(video_models.default_model(allowed, has_image=True))
        return SWITCHED_OFF_NOTE.format(name=name, fallback=fallback)
    if video_models.MODELS[prefs.model].image_required:
        fallback = video_models.display_name(video_models.default_model(allowed, has_image=False))
        return FAST_NOTE.format(name=name, fallback=fallback)
    return None
