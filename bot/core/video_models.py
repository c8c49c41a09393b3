"""The video models the bot can use, in one place: endpoint, what each accepts, task type, credits and price.

Every part of the bot that depends on the model reads this registry: the Novita client (which endpoint),
the cheap checks before anything is spent (first and last frame), quota admission (credits and price), the
job card, Details, /about, /usage, the CSV and the reports. Adding the next model that follows Novita's
submit/task-result pattern is one `VideoModel` entry in `MODELS`.

Credits and USD prices are settings: `CREDIT_TABLE` / `PRICE_TABLE` are the base tables (Hailuo-02's), and
`MODEL_CREDIT_TABLE` / `MODEL_PRICE_TABLE` hold entries for other models (`hailuo-2.3:768P/6=1`); a model
without its own entry costs what the base table says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .i18n import Text, _, join
from .policy import GuildSettings
from .settings import Settings

SUBMIT_PREFIX = "/v3/async/"


@dataclass(frozen=True)
class VideoModel:
    key: str  # the `model` option's value, stored on the job row
    name: str  # what members read
    image_endpoint: str  # path under /v3/async/ when a first frame is sent
    text_endpoint: str | None  # ... without one; None: a first frame is required
    last_frame: bool  # accepts `end_image` (needs a first frame)
    task_types: tuple[str, str | None]  # Novita's task type for (image endpoint, text endpoint)
    note: Text | str = ""  # one short line for /about

    @property
    def image_required(self) -> bool:
        return self.text_endpoint is None

    def endpoint(self, has_image: bool) -> str:
        """The submit path for a request with or without a first frame (`ValueError` if not served)."""
        if has_image:
            return SUBMIT_PREFIX + self.image_endpoint
        if self.text_endpoint is None:
            raise ValueError(f"{self.name} needs a first frame")
        return SUBMIT_PREFIX + self.text_endpoint

    def task_type(self, has_image: bool) -> str:
        image_type, text_type = self.task_types
        return image_type if has_image or text_type is None else text_type


MODELS: dict[str, VideoModel] = {
    m.key: m
    for m in (
        VideoModel(
            key="hailuo-02",
            name="Hailuo-02",
            image_endpoint="minimax-hailuo-02",
            text_endpoint="minimax-hailuo-02",
            last_frame=True,
            task_types=("MINIMAX_HAILUO_02", "MINIMAX_HAILUO_02"),
            note=_("text or image, optional last frame"),
        ),
        VideoModel(
            key="hailuo-2.3",
            name="Hailuo 2.3",
            image_endpoint="minimax-hailuo-2.3-i2v",
            text_endpoint="minimax-hailuo-2.3-t2v",
            last_frame=False,
            task_types=("MINIMAX_HAILUO_2_3_I2V", "MINIMAX_HAILUO_2_3_T2V"),
            note=_("text or image"),
        ),
        VideoModel(
            key="hailuo-2.3-fast",
            name="Hailuo 2.3 Fast",
            image_endpoint="minimax-hailuo-2.3-fast-i2v",
            text_endpoint=None,
            last_frame=False,
            task_types=("MINIMAX_HAILUO_2_3_FAST_I2V", None),
            note=_("needs an image"),
        ),
    )
}
DEFAULT_MODEL = "hailuo-02"
MODEL_KEYS = tuple(MODELS)


def get(key: str | None) -> VideoModel:
    """The model for a stored key; an unknown or missing key (an old row) reads as the default model."""
    return MODELS.get(key or DEFAULT_MODEL, MODELS[DEFAULT_MODEL])


def display_name(key: str | None) -> str:
    return get(key).name


def by_endpoint(path: str) -> VideoModel | None:
    """The model a submit path belongs to (the simulator and the fakes route on it)."""
    name = path.removeprefix(SUBMIT_PREFIX)
    for model in MODELS.values():
        if name in (model.image_endpoint, model.text_endpoint):
            return model
    return None


# Costs ----------------------------------------------------------------------------------------------------
def credits(settings: Settings, key: str, resolution: str, duration: int) -> int:
    own = (settings.model_credit_table or {}).get((key, resolution, duration))
    return own if own is not None else settings.credits_for(resolution, duration)


def price(settings: Settings, key: str, resolution: str, duration: int) -> float:
    own = (settings.model_price_table or {}).get((key, resolution, duration))
    return own if own is not None else settings.price_for(resolution, duration)


def credit_table(settings: Settings, key: str) -> dict[tuple[str, int], int]:
    return {(res, dur): credits(settings, key, res, dur) for res, dur in settings.credit_table}


# A server's models ----------------------------------------------------------------------------------------
def allowed_models(guild: GuildSettings | None) -> tuple[str, ...]:
    """The models a server allows, in registry order. Never set (or unreadable) means all of them."""
    keys = guild.allowed_models if guild else None
    if keys is None:
        return MODEL_KEYS
    return tuple(k for k in MODEL_KEYS if k in set(keys))


def encode_allowed(keys: Iterable[str]) -> str | None:
    """For the guild_settings column: None when every model is allowed (so later models are too)."""
    chosen = [k for k in MODEL_KEYS if k in set(keys)]
    return None if chosen == list(MODEL_KEYS) else json.dumps(chosen)


def default_model(allowed: Iterable[str], has_image: bool, has_last_frame: bool = False) -> str:
    """The model a request gets when the member chose none: Hailuo-02, or the first allowed one that can
    serve it when the server switched Hailuo-02 off."""
    allowed = tuple(allowed)
    if DEFAULT_MODEL in allowed or not allowed:
        return DEFAULT_MODEL
    for key in allowed:
        model = MODELS[key]
        if (has_image or not model.image_required) and (model.last_frame or not has_last_frame):
            return key
    return allowed[0]


def names(keys: Iterable[str]) -> str:
    shown = [MODELS[k].name for k in keys if k in MODELS]
    return ", ".join(shown) if shown else "none"


def refusal(
    key: str, has_image: bool, has_last_frame: bool, allowed: Iterable[str] | None = None
) -> Text | None:
    """Why this model can't serve this request here (one sentence), or None. Checked before anything
    is spent: Novita would refuse these with a 400, or the server has switched the model off."""
    model = MODELS.get(key)
    if model is None:
        return _("There is no model called “{key}”. Choose {models}.", key=key[:40], models=names(MODEL_KEYS))
    allowed = MODEL_KEYS if allowed is None else tuple(allowed)
    if key not in allowed:
        return _(
            "This server doesn't allow {model}. Choose {models}, or ask a moderator.",
            model=model.name,
            models=names(allowed),
        )
    if has_last_frame and not has_image:
        return _("A last frame needs a first frame too: add `image` (the picture the video starts from).")
    if has_last_frame and not model.last_frame:
        capable = names(k for k in allowed if MODELS[k].last_frame)
        return _(
            "{model} can't use a last frame. Remove `last_frame`, or choose {models}.",
            model=model.name,
            models=capable,
        )
    if model.image_required and not has_image:
        return _(
            "{model} needs an image to start from. Add `image`, or choose another model.", model=model.name
        )
    return None


def cost_lines(settings: Settings, keys: Iterable[str], guild: GuildSettings | None = None) -> Text:
    """Each model's prices, one line each: '**Hailuo-02** — 6 s 768P: 1 credit · 10 s 768P: 2 credits'."""
    from . import wording
    from .quota import VIDEO_KINDS, credit_table  # quota imports this module

    lines = [
        join(
            f"**{MODELS[key].name}** —",
            wording.price_list(credit_table(settings, guild, key), VIDEO_KINDS),
        )
        for key in keys
    ]
    return join(*lines, sep="\n")


def aspect_warning(
    first: tuple[int | None, int | None], last: tuple[int | None, int | None], tolerance: float = 0.10
) -> Text | None:
    """One sentence when the last frame's aspect ratio differs from the first's by more than `tolerance`
    (the video follows the first frame's), or None. Sizes are (width, height); unknown sizes pass."""
    (w1, h1), (w2, h2) = first, last
    if not (w1 and h1 and w2 and h2):
        return None
    ratio = (w2 / h2) / (w1 / h1)
    if abs(ratio - 1) <= tolerance:
        return None
    last_size, first_size = f"{w2}×{h2}", f"{w1}×{h1}"
    return _(
        "Heads-up: the last frame ({last}) has a different shape from the first ({first}); the video keeps "
        "the first frame's shape, so the last frame will be cropped or stretched to fit.",
        last=last_size,
        first=first_size,
    )
