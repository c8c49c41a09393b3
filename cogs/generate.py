"""Generation front end: /video, the "Animate image" context menu, and the shared path every entry ends in.

Thin by design: parse what Discord sent and hand the request to the bot's job starter
(`bot/discord_side/job_starter.py`), which checks it, lets the runner admit it (atomic quota), answers with
the public job card inside Discord's 3-second window and starts the job. The mention entry
(cogs/mention.py) and the result buttons (cogs/buttons.py) use the same starter.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import preferences, video_models
from bot.core.i18n import Text, _
from bot.core.models import CAMERA_MOVES, Entry
from bot.core.validation import check_options
from bot.discord_side.answers import guarded, reply, speak
from bot.discord_side.forms import (
    NO_IMAGE,
    ImageSource,
    VideoForm,
    custom_id_of,
    image_refusal,
    pick_image,
    read_form,
    send_modal,
    settings_modal,
)
from bot.discord_side.job_starter import member_roles

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.generate")

__all__ = ["Generate", "image_refusal", "member_roles"]

ANIMATE_MODAL = re.compile(r"hailuo:m:animate:(?P<message>[0-9]{1,20})")
TARGET_CACHE = 256  # recent context-menu targets, so a submission needs no second look at the message


class Generate(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        # locale_str: discord.py asks the translator for a menu name only when it is marked so
        self.animate_menu = app_commands.ContextMenu(
            name=app_commands.locale_str("Animate image"), callback=self.animate_image
        )
        self.animate_menu.guild_only = True
        self._targets: collections.OrderedDict[tuple[int, int], ImageSource] = collections.OrderedDict()

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.animate_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.animate_menu.name, type=self.animate_menu.type)

    # /video --------------------------------------------------------------------------------------------
    @app_commands.command(
        name="video", description="Make a short video from a prompt, optionally from an image"
    )
    @app_commands.describe(
        prompt="What should happen in the video (up to 2000 characters)",
        image="First frame: a JPG, PNG or WebP image (optional)",
        duration="Length in seconds (10 s is 768P only)",
        resolution="Video resolution (1080P is 6 s only)",
        prompt_expansion="Let the model enrich your prompt (on by default)",
        camera="A camera move, added to the prompt as [Move]",
        model="The video model (Hailuo-02 by default; Hailuo 2.3 Fast needs an image)",
        last_frame="Last frame: the picture the video ends on (needs image; Hailuo-02 only)",
    )
    @app_commands.choices(  # one decorator per value type, so each list's type is checked
        duration=[
            app_commands.Choice(name="6 seconds", value=6),
            app_commands.Choice(name="10 seconds", value=10),
        ],
    )
    @app_commands.choices(
        resolution=[
            app_commands.Choice(name="768P", value="768P"),
            app_commands.Choice(name="1080P", value="1080P"),
        ],
        camera=[app_commands.Choice(name=move, value=move) for move in CAMERA_MOVES],
        model=[app_commands.Choice(name=m.name, value=m.key) for m in video_models.MODELS.values()],
    )
    @app_commands.guild_only()
    async def video(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        prompt_expansion: bool | None = None,
        camera: str | None = None,
        model: str | None = None,
        last_frame: discord.Attachment | None = None,
    ) -> None:
        # What the member left out comes from their /preferences, else the defaults.
        starter = self.bot.starter
        chosen = preferences.resolve(
            await starter.member_prefs(interaction),
            allowed=await starter.allowed_models(interaction.guild_id),
            has_image=image is not None,
            has_last_frame=last_frame is not None,
            duration=duration,
            resolution=resolution,
            prompt_expansion=prompt_expansion,
            model=model,
        )
        refusal: Text | str | None = check_options(prompt, chosen.duration, chosen.resolution, camera)
        if refusal is None and image is not None:
            refusal = image_refusal(image, self.bot.settings.image_origins)
        if refusal is None and last_frame is not None:
            problem = image_refusal(last_frame, self.bot.settings.image_origins)
            refusal = _("Last frame: {problem}", problem=problem) if problem else None
        if refusal:
            await reply(interaction, refusal)
            return
        request = starter.interaction_request(
            interaction,
            prompt=prompt.strip(),
            duration=chosen.duration,
            resolution=chosen.resolution,
            prompt_expansion=chosen.prompt_expansion,
            camera=camera,
            image_url=image.url if image else None,
            image_name=image.filename if image else None,
            entry=Entry.SLASH,
            model=chosen.model,
            last_frame_url=last_frame.url if last_frame else None,
            last_frame_name=last_frame.filename if last_frame else None,
        )
        job = await self.bot.starter.start_from_interaction(
            interaction, request, lambda text: reply(interaction, text)
        )
        if job is not None and image is not None and last_frame is not None:
            warning = video_models.aspect_warning(
                (image.width, image.height), (last_frame.width, last_frame.height)
            )
            if warning:
                with contextlib.suppress(discord.HTTPException):
                    await interaction.followup.send(speak(interaction, warning), ephemeral=True)

    # "Animate image" -------------------------------------------------------------------------------------
    async def animate_image(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Message context menu: check the image and the member's allowance, then ask for the prompt."""
        source, refusal = pick_image(message, self.bot.settings.image_origins)
        if source is None:
            await reply(interaction, refusal or NO_IMAGE)
            return
        refusal = await self.bot.starter.precheck(interaction)
        if refusal:
            await reply(interaction, refusal)
            return
        self._targets[(interaction.user.id, message.id)] = source
        while len(self._targets) > TARGET_CACHE:
            self._targets.popitem(last=False)
        allowed = await self.bot.starter.allowed_models(interaction.guild_id)
        mine = await self.bot.starter.member_prefs(interaction)
        chosen = preferences.resolve(mine, allowed=allowed, has_image=True)
        modal = settings_modal(
            f"hailuo:m:animate:{message.id}", _("Animate image"), duration=chosen.duration,
            locale=str(interaction.locale),
            resolution=chosen.resolution, prompt_expansion=chosen.prompt_expansion, model=chosen.model,
            models=allowed,
        )  # fmt: skip
        await send_modal(interaction, modal)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type != discord.InteractionType.modal_submit:
            return
        match = ANIMATE_MODAL.fullmatch(custom_id_of(interaction))
        if match is not None:
            work = self.animate_submitted(interaction, int(match["message"]))
            await guarded(interaction, work, "Animate image")

    async def animate_submitted(self, interaction: discord.Interaction, message_id: int) -> None:
        form = read_form(interaction, VideoForm("", 6, "768P", True, video_models.DEFAULT_MODEL))
        refusal: Text | str | None = check_options(form.prompt, form.duration, form.resolution)
        if refusal:
            await reply(interaction, refusal)
            return
        source = self._targets.pop((interaction.user.id, message_id), None)
        if source is None:  # the bot restarted while the modal was open: look at the message again
            source, refusal = await self._fetch_image(interaction, message_id)
            if source is None:
                await reply(interaction, refusal or NO_IMAGE)
                return
        request = self.bot.starter.interaction_request(
            interaction,
            prompt=form.prompt,
            duration=form.duration,
            resolution=form.resolution,
            prompt_expansion=form.prompt_expansion,
            image_url=source.url,
            image_name=source.filename,
            entry=Entry.CONTEXT,
            source_message_id=message_id,
            model=form.model,
        )
        await self.bot.starter.start_from_interaction(
            interaction, request, lambda text: reply(interaction, text)
        )

    async def _fetch_image(
        self, interaction: discord.Interaction, message_id: int
    ) -> tuple[ImageSource | None, Text | str | None]:
        channel = interaction.channel
        if channel is None or not hasattr(channel, "fetch_message"):
            return None, NO_IMAGE
        try:
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            return None, _("That message was deleted, so its image can't be animated.")
        except discord.HTTPException:
            return None, _("I couldn't read that message again. Use “Animate image” on it once more.")
        return pick_image(message, self.bot.settings.image_origins)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Generate(bot))
