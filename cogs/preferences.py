"""/preferences: a member's own defaults for new videos in this server, and whether results also come by DM.

One ephemeral message with a select per setting (duration, resolution, model, prompt expansion), a "results
by DM too" toggle and a reset button. Each control is a `DynamicItem` whose custom id carries the setting and
the member (`hailuo:pref:duration:123`), so the message keeps working after a restart; a custom id is
member-controlled input, so only the member it names may use it and every value is checked again
(`bot/core/preferences.py`) before it is stored. The rules that apply the defaults to a request live there
too; the DM copy of a delivered video is sent from here (a final listener of the reporter).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands, ui
from discord.ext import commands

from bot.core import video_models
from bot.core.i18n import Text, _, plural, render
from bot.core.models import Job, JobState
from bot.core.preferences import (
    DEFAULT_DURATION,
    DEFAULT_RESOLUTION,
    Preferences,
    change,
    model_note,
)
from bot.discord_side.answers import guarded, reply

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.preferences")

# What members read, kept together for translation.
TITLE = _("**Your defaults for new videos in this server**")
HINT = _("Options you give on /video or in a mention always win over these.")
SERVER_DEFAULT = _("server default")
NOT_YOURS = _("These are someone else's preferences. Use /preferences to see and change your own.")
OUTSIDE = _("Preferences are kept per server: use /preferences in a server.")
RESET_DONE = _("Back to the server defaults.")
DM_ON = _("Results by DM too: on")
DM_OFF = _("Results by DM too: off")
RESET = _("Reset to server defaults")
DM_COPY = _("Your video #{id} is ready: {link}")
PLACEHOLDERS = {
    "duration": _("Duration"),
    "resolution": _("Resolution"),
    "model": _("Model"),
    "expansion": _("Prompt expansion"),
}

FIELDS = {
    "duration": "duration",
    "resolution": "resolution",
    "model": "model",
    "expansion": "prompt_expansion",
}
DM_EVENT = "dm-copy"


def custom_id(control: str, user_id: int) -> str:
    return f"hailuo:pref:{control}:{user_id}"


def on_off(value: bool) -> str:
    return "on" if value else "off"


def on_off_text(value: bool) -> Text:
    return _("on") if value else _("off")


def seconds(n: int) -> Text:
    return plural("{count} second", "{count} seconds", n)


def shown(prefs: Preferences, allowed: tuple[str, ...]) -> list[tuple[Text, Text | str, bool]]:
    """(setting, value as read, the member's own?) for each setting."""
    model = video_models.default_model(allowed, has_image=False)
    return [
        (_("Duration"), seconds(prefs.duration or DEFAULT_DURATION), prefs.duration is not None),
        (_("Resolution"), prefs.resolution or DEFAULT_RESOLUTION, prefs.resolution is not None),
        (_("Model"), video_models.display_name(prefs.model or model), prefs.model is not None),
        (
            _("Prompt expansion"),
            on_off_text(prefs.prompt_expansion is not False),
            prefs.prompt_expansion is not None,
        ),
        (_("Results by DM too"), on_off_text(prefs.dm_results), prefs.dm_results),
    ]


def render_text(
    prefs: Preferences, allowed: tuple[str, ...], note: Text | None = None, locale: str | None = None
) -> str:
    """The /preferences message in `locale` (the member's)."""

    def say(text: Text | str) -> str:
        return render(text, locale)

    lines = [say(TITLE), say(HINT), ""]
    for name, value, own in shown(prefs, allowed):
        lines.append(f"• {say(name)}: **{say(value)}**" + ("" if own else f" ({say(SERVER_DEFAULT)})"))
    extra = model_note(prefs, allowed)
    if extra:
        lines += ["", say(extra)]
    if note:
        lines += ["", f"⚠️ {say(note)}" if note != RESET_DONE else f"✅ {say(note)}"]
    return "\n".join(lines)


def _options(
    choices: list[tuple[str, Text | str, Text | str | None]], current: str, locale: str | None
) -> list[discord.SelectOption]:
    return [
        discord.SelectOption(
            label=render(label, locale),
            value=value,
            description=render(description, locale) or None,
            default=value == current,
        )
        for value, label, description in choices
    ]


def render_view(
    prefs: Preferences, allowed: tuple[str, ...], user_id: int, locale: str | None = None
) -> ui.View:
    server_model = video_models.display_name(video_models.default_model(allowed, has_image=False))
    default = _("Server default ({value})")
    models: list[tuple[str, Text | str, Text | str | None]] = [
        (key, video_models.MODELS[key].name, video_models.MODELS[key].note or None) for key in allowed
    ]
    selects: dict[str, tuple[list[tuple[str, Text | str, Text | str | None]], str]] = {
        "duration": (
            [("default", default.with_params(value=seconds(DEFAULT_DURATION)), None), ("6", seconds(6), None),
             ("10", seconds(10), _("768P only"))],
            str(prefs.duration or "default"),
        ),
        "resolution": (
            [("default", default.with_params(value=DEFAULT_RESOLUTION), None), ("768P", "768P", None),
             ("1080P", "1080P", _("6 seconds only"))],
            prefs.resolution or "default",
        ),
        "model": (
            [("default", default.with_params(value=server_model), None), *models],
            prefs.model or "default",
        ),
        "expansion": (
            [("default", default.with_params(value=_("on")), None),
             ("on", _("Prompt expansion on"), _("Let the model enrich your prompt")),
             ("off", _("Prompt expansion off"), _("Send your prompt as written"))],
            "default" if prefs.prompt_expansion is None else on_off(prefs.prompt_expansion),
        ),
    }  # fmt: skip
    view = ui.View(timeout=None)
    for row, (control, (choices, current)) in enumerate(selects.items()):
        select: ui.Select[ui.View] = ui.Select(
            custom_id=custom_id(control, user_id),
            placeholder=render(PLACEHOLDERS[control], locale),
            options=_options(choices, current, locale),
            row=row,
        )
        view.add_item(PrefControl(select, control, user_id))
    dm = ui.Button[ui.View](
        label=render(DM_ON if prefs.dm_results else DM_OFF, locale),
        style=discord.ButtonStyle.success if prefs.dm_results else discord.ButtonStyle.secondary,
        emoji="📬",
        custom_id=custom_id("dm", user_id),
        row=4,
    )
    view.add_item(PrefControl(dm, "dm", user_id))
    reset = ui.Button[ui.View](
        label=render(RESET, locale),
        style=discord.ButtonStyle.secondary,
        emoji="↩️",
        custom_id=custom_id("reset", user_id),
        row=4,
    )
    view.add_item(PrefControl(reset, "reset", user_id))
    return view


class PrefControl(
    ui.DynamicItem[ui.Item[ui.View]],
    template=r"hailuo:pref:(?P<control>duration|resolution|model|expansion|dm|reset):(?P<user>[0-9]{1,20})",
):
    """One control of the /preferences message; who and what are in the custom id, so it survives restarts."""

    def __init__(self, item: ui.Item[ui.View], control: str, user_id: int) -> None:
        super().__init__(item)
        self.control = control
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> PrefControl:
        return cls(item, match["control"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Preferences")  # type: ignore[attr-defined]  # a commands.Bot
        if not isinstance(cog, PreferencesCog):
            await reply(interaction, _("This isn't available right now. Try again in a minute."))
            return
        work = cog.pressed(interaction, self.control, self.user_id)
        await guarded(interaction, work, f"preferences {self.control}")


def chosen_value(interaction: discord.Interaction) -> str:
    """The one value a select sent ("" when the payload is not what a select sends)."""
    data: Mapping[str, Any] = interaction.data or {}
    values = data.get("values")
    if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return ""


class PreferencesCog(commands.Cog, name="Preferences"):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PrefControl)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PrefControl)

    async def allowed(self, guild_id: int) -> tuple[str, ...]:
        return await self.bot.starter.allowed_models(guild_id)

    @app_commands.command(
        name="preferences", description="Your own defaults for /video here, and results by DM"
    )
    @app_commands.guild_only()
    async def preferences(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            await reply(interaction, OUTSIDE)
            return
        user_id = interaction.user.id
        prefs = await self.bot.store.member_prefs(interaction.guild_id, user_id)
        allowed = await self.allowed(interaction.guild_id)
        locale = str(interaction.locale)
        await interaction.response.send_message(
            render_text(prefs, allowed, locale=locale),
            view=render_view(prefs, allowed, user_id, locale),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def pressed(self, interaction: discord.Interaction, control: str, user_id: int) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            await reply(interaction, OUTSIDE)
            return
        if interaction.user.id != user_id:
            await reply(interaction, NOT_YOURS)
            return
        allowed = await self.allowed(guild_id)
        store = self.bot.store
        note: Text | None
        if control == "reset":
            await store.clear_member_prefs(guild_id, user_id)
            prefs, note = Preferences(), RESET_DONE
        elif control == "dm":
            prefs, note = await store.change_member_prefs(guild_id, user_id, self.flip_dm)
        else:
            value = chosen_value(interaction)
            prefs, note = await store.change_member_prefs(
                guild_id, user_id, lambda p: change(p, FIELDS[control], value, allowed)
            )
        log.info("preferences of %s in %s: %s (%s)", user_id, guild_id, control, "refused" if note else "ok")
        locale = str(interaction.locale)
        await interaction.response.edit_message(
            content=render_text(prefs, allowed, note, locale),
            view=render_view(prefs, allowed, user_id, locale),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @staticmethod
    def flip_dm(prefs: Preferences) -> tuple[Preferences, Text | None]:
        return dataclasses.replace(prefs, dm_results=not prefs.dm_results), None

    # Results by DM too --------------------------------------------------------------------------------
    @commands.Cog.listener("on_job_final")
    async def send_dm_copy(self, job: Job) -> None:
        """A link to the delivered result in the requester's DMs, when they asked for it. The video is not
        uploaded again: it already is, and a DM's upload limit would often mean shrinking it once more. A
        refused DM is only logged; the delivery stands."""
        if job.state != JobState.DELIVERED or job.delivered_via == "dm" or job.guild_id is None:
            return
        if not (job.result_channel_id and job.result_message_id):
            return
        prefs = await self.bot.store.member_prefs(job.guild_id, job.user_id)
        if not prefs.dm_results:
            return
        if any(e["state"] == DM_EVENT for e in await self.bot.store.events(job.id)):
            return  # sent before a restart
        link = f"https://discord.com/channels/{job.guild_id}/{job.result_channel_id}/{job.result_message_id}"
        try:
            user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            await user.send(
                render(DM_COPY.with_params(id=str(job.id), link=link), job.locale),
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=f"hailuo-{job.id}-x",
            )
        except discord.HTTPException as exc:
            log.info("job=%s the DM copy was refused (%s %s)", job.id, exc.status, exc.code)
            return
        await self.bot.store.add_event(job.id, DM_EVENT)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(PreferencesCog(bot))
