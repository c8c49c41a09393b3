"""Shared pieces of the entry points: the settings modal, reading its submission, finding a message's image.

Modals are stateless: everything needed to act on a submission is in its custom id (`hailuo:m:<kind>:<id>`)
and the submitted values, and the cogs read submissions in an `on_interaction` listener. So a modal that
was open while the bot restarted still works when it is submitted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
from discord import ui

from ..core import media, video_models
from ..core.validation import MAX_PROMPT

NO_IMAGE = (
    "That message has no image to animate. Use “Animate image” on a message with a JPG, PNG or WebP "
    "image, or use /video."
)
_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif")


@dataclass(frozen=True)
class VideoForm:
    """What the modal asked: the same options as /video except the images and camera."""

    prompt: str
    duration: int | str
    resolution: str
    prompt_expansion: bool
    model: str = video_models.DEFAULT_MODEL


def settings_modal(
    custom_id: str,
    title: str,
    *,
    prompt: str = "",
    prompt_label: str = "Prompt",
    prompt_note: str | None = None,
    placeholder: str = "What should happen in the video?",
    duration: int = 6,
    resolution: str = "768P",
    prompt_expansion: bool = True,
    model: str = video_models.DEFAULT_MODEL,
    models: tuple[str, ...] = (),
) -> ui.Modal:
    """Prompt (required, up to 2000 characters), duration, resolution, prompt expansion, and the model
    when `models` offers a choice (a modal holds five components: this is the fifth). `prompt_note` is a
    line under the prompt's label (e.g. what the video costs)."""
    modal = ui.Modal(title=title[:45], custom_id=custom_id, timeout=None)
    text: ui.TextInput[ui.Modal] = ui.TextInput(
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        min_length=1,
        max_length=MAX_PROMPT,
        required=True,
        placeholder=placeholder[:100],
        default=prompt[:MAX_PROMPT] or None,
    )
    modal.add_item(ui.Label(text=prompt_label, description=prompt_note and prompt_note[:100], component=text))
    durations = [
        discord.SelectOption(label=f"{s} seconds", value=str(s), default=s == duration) for s in (6, 10)
    ]
    modal.add_item(
        ui.Label(
            text="Duration",
            description="10 seconds is 768P only",
            component=ui.Select(custom_id="duration", options=durations),
        )
    )
    resolutions = [discord.SelectOption(label=r, value=r, default=r == resolution) for r in ("768P", "1080P")]
    modal.add_item(
        ui.Label(
            text="Resolution",
            description="1080P is 6 seconds only",
            component=ui.Select(custom_id="resolution", options=resolutions),
        )
    )
    modal.add_item(
        ui.Label(
            text="Prompt expansion",
            description="Let the model enrich your prompt",
            component=ui.Checkbox(custom_id="expansion", default=prompt_expansion),
        )
    )
    if models:
        choices = [
            discord.SelectOption(label=video_models.MODELS[k].name, value=k, default=k == model,
                                 description=video_models.MODELS[k].note[:100] or None)
            for k in models
        ]  # fmt: skip
        modal.add_item(ui.Label(text="Model", component=ui.Select(custom_id="model", options=choices)))
    return modal


async def send_modal(interaction: discord.Interaction, modal: ui.Modal) -> None:
    """Show the modal without keeping it in discord.py's memory: the cogs' listeners read submissions."""
    await interaction.response.send_modal(modal)
    modal.stop()


def _leaves(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for comp in components:
        if isinstance(comp.get("components"), list):
            yield from _leaves(comp["components"])
        elif isinstance(comp.get("component"), dict):
            yield from _leaves([comp["component"]])
        else:
            yield comp


def custom_id_of(interaction: discord.Interaction) -> str:
    """The custom id of the component or modal an interaction comes from ("" when it has none)."""
    data: Mapping[str, object] = interaction.data or {}
    return str(data.get("custom_id", ""))


def submitted_values(interaction: discord.Interaction) -> dict[str, Any]:
    """custom_id -> value of a modal submission (text: str, select: list of str, checkbox: bool)."""
    data: dict[str, Any] = dict(interaction.data or {})
    out: dict[str, Any] = {}
    for leaf in _leaves(list(data.get("components") or [])):
        custom_id = leaf.get("custom_id")
        if custom_id is None:
            continue
        out[custom_id] = leaf["values"] if "values" in leaf else leaf.get("value")
    return out


def read_form(interaction: discord.Interaction, defaults: VideoForm) -> VideoForm:
    """The submitted settings; anything missing or malformed keeps the default or is left for
    `check_options` to refuse (a crafted submission can send anything)."""
    values = submitted_values(interaction)

    def first(name: str, default: str) -> str:
        value = values.get(name)
        if isinstance(value, list):
            return str(value[0]) if value else default
        return default if value is None else str(value)

    duration_text = first("duration", str(defaults.duration))
    expansion = values.get("expansion", defaults.prompt_expansion)
    return VideoForm(
        prompt=str(values.get("prompt") or "").strip(),
        duration=int(duration_text) if duration_text.isdigit() else duration_text,
        resolution=first("resolution", defaults.resolution),
        prompt_expansion=expansion if isinstance(expansion, bool) else str(expansion).lower() == "true",
        model=first("model", defaults.model),
    )


# Images on messages --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageSource:
    url: str
    filename: str
    message_id: int


def image_refusal(attachment: discord.Attachment, origins: Sequence[str]) -> str | None:
    """What Discord's attachment metadata already tells us, checked before answering."""
    if not media.image_url_allowed(attachment.url, origins):
        return media.NOT_ON_DISCORD
    return _meta_refusal(
        media.ImageMeta(
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            width=attachment.width,
            height=attachment.height,
        )
    )


def _meta_refusal(meta: media.ImageMeta) -> str | None:
    try:
        media.check_image_metadata(meta)
    except media.ImageRejected as exc:
        return exc.user_message
    return None


def _looks_like_image(attachment: discord.Attachment) -> bool:
    ctype = (attachment.content_type or "").lower()
    return ctype.startswith("image/") or attachment.filename.lower().rsplit(".", 1)[-1] in _IMAGE_EXTENSIONS


def _embed_image(embed: discord.Embed) -> tuple[str, int | None, int | None] | None:  # noqa: TID251 - read
    """A linked image through Discord's media proxy (never the link itself: it can point anywhere)."""
    if embed.image.url:
        return embed.image.proxy_url or "", embed.image.width, embed.image.height
    if embed.type == "image" and embed.thumbnail.url:
        thumb = embed.thumbnail
        return thumb.proxy_url or "", thumb.width, thumb.height
    return None


def pick_image(message: discord.Message, origins: Sequence[str]) -> tuple[ImageSource | None, str | None]:
    """The first usable image of a message (attachments first, then image embeds), or the reason the
    image-looking files it has can't be used. (None, None) when it has no image at all. Only images on
    `origins` (Discord's media hosts) are ever fetched."""
    refusal: str | None = None
    for attachment in message.attachments:
        if not _looks_like_image(attachment):
            continue
        problem = image_refusal(attachment, origins)
        if problem is None:
            return ImageSource(attachment.url, attachment.filename, message.id), None
        refusal = refusal or problem
    for embed in message.embeds:
        found = _embed_image(embed)
        if found is None:
            continue
        url, width, height = found
        name = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
        if name.lower().rsplit(".", 1)[-1] not in _IMAGE_EXTENSIONS:
            name = "embed.jpg"  # links often have no extension; the real bytes are checked before submitting
        problem = _meta_refusal(media.ImageMeta(name, None, 0, width, height))
        if problem is None and not media.image_url_allowed(url, origins):
            problem = media.NOT_ON_DISCORD
        if problem is None:
            return ImageSource(url, name, message.id), None
        refusal = refusal or problem
    return None, refusal


def link_alive(url: str, margin_s: float = 120.0) -> bool:
    """False when a Discord CDN link's signed expiry (`ex`, hex seconds) has passed or is about to."""
    expiry = parse_qs(urlsplit(url).query).get("ex")
    if not expiry:
        return True  # not a signed link
    try:
        return int(expiry[0], 16) - time.time() > margin_s
    except ValueError:
        return False
