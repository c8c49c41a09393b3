"""Generation front end: /video, the "Animate image" context menu, and the shared path every entry ends in.

Thin by design: parse what Discord sent, run the cheap checks, let the runner admit the job (atomic quota),
answer with the public job card inside Discord's 3-second window, then hand the job to the runner.
The mention entry (cogs/mention.py) and the result buttons (cogs/buttons.py) use the same path.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import blocklist, metrics, preferences, quota, video_models
from bot.core.models import CAMERA_MOVES, Job, JobRequest, utcnow
from bot.core.preferences import Preferences
from bot.core.validation import check_options
from bot.discord_side import cards
from bot.discord_side.app import reply
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
from bot.discord_side.missing import or_missing

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.generate")

__all__ = ["Generate", "image_refusal", "member_roles"]

ANIMATE_MODAL = re.compile(r"hailuo:m:animate:(?P<message>[0-9]{1,20})")
TARGET_CACHE = 256  # recent context-menu targets, so a submission needs no second look at the message
OOPS = "Something went wrong on our side and it has been logged. Please try again."


def member_roles(user: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(user, "roles", ()) if not role.is_default())


async def guarded(interaction: discord.Interaction, work: Awaitable[object], what: str) -> None:
    """Run a handler that is not an app command (listeners, buttons): a crash becomes one sentence."""
    try:
        await work
    except Exception:
        log.exception("%s failed (interaction %s)", what, interaction.id)
        try:
            await reply(interaction, OOPS)
        except Exception as exc:  # e.g. the HTTP session closed because the bot is shutting down
            log.warning("could not tell the member about it either: %r", exc)


class Generate(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        self.animate_menu = app_commands.ContextMenu(name="Animate image", callback=self.animate_image)
        self.animate_menu.guild_only = True
        self._targets: collections.OrderedDict[tuple[int, int], ImageSource] = collections.OrderedDict()

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.animate_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.animate_menu.name, type=self.animate_menu.type)

    # The shared path --------------------------------------------------------------------------------
    async def server_rules(self, guild_id: int | None, channel_id: int | None, prompt: str) -> str | None:
        """The server's own rules: allowed channels and the prompt blocklist."""
        if guild_id is None:
            return None
        rules = await self.bot.store.guild_settings(guild_id)
        allowed = rules.get("allowed_channels") or []
        if allowed and channel_id not in allowed:
            where = ", ".join(f"<#{c}>" for c in allowed[:5])
            return f"Videos can't be made in this channel. Try {where}."
        hit = await blocklist.screen(prompt, rules.get("blocklist") or [])
        if hit is not None:
            shown = "a blocked pattern" if hit.startswith("re:") else f"“{hit}”"
            return f"Your prompt contains {shown}, which this server doesn't allow. Change it and try again."
        return None

    async def allowed_models(self, guild_id: int | None) -> tuple[str, ...]:
        """The models this server lets its members use (all of them outside a server)."""
        if guild_id is None:
            return video_models.MODEL_KEYS
        return video_models.allowed_models(await self.bot.store.guild_settings(guild_id))

    async def model_refusal(self, request: JobRequest) -> str | None:
        """Whether the chosen model can serve this request here: frames it takes, the server's choice."""
        has_image = bool(request.image_url or request.image_bytes is not None or request.image_path)
        has_last = bool(request.last_frame_url or request.last_frame_bytes is not None)
        allowed = await self.allowed_models(request.guild_id)
        return video_models.refusal(request.model, has_image, has_last, allowed)

    async def admit(self, request: JobRequest) -> tuple[Job | None, str]:
        refusal = check_options(request.prompt, request.duration, request.resolution, request.camera)
        refusal = refusal or await self.model_refusal(request)
        refusal = refusal or await self.server_rules(request.guild_id, request.channel_id, request.prompt)
        if refusal:
            return None, refusal
        job, decision = await self.bot.runner.submit(request)
        return job, decision.message

    async def precheck(
        self, interaction: discord.Interaction, cost: tuple[int, float] | None = None
    ) -> str | None:
        """Before asking for a prompt in a modal (or reading frames): would the press be refused anyway?
        `cost` (credits, USD) is what it costs; None: the cheapest video this server offers."""
        refusal, _ = await self.allowance(interaction, cost)
        return refusal

    async def allowance(
        self, interaction: discord.Interaction, cost: tuple[int, float] | None = None
    ) -> tuple[str | None, quota.MemberUsage | None]:
        """`precheck`'s answer, and the member's usage when the rules let them in (for showing it)."""
        refusal = await self.server_rules(interaction.guild_id, interaction.channel_id, "")
        if refusal:
            return refusal, None
        settings, user = self.bot.settings, interaction.user
        usage = await quota.member_usage(
            self.bot.store, settings, interaction.guild_id, user.id, member_roles(user)
        )
        credits, usd = cost or await self.cheapest(interaction.guild_id)
        decision = quota.decide(usage.policy, usage.usage, credits, usd, utcnow())
        return (None, usage) if decision.ok else (decision.message, usage)

    async def costs(
        self, guild_id: int | None, model: str, resolution: str, duration: int
    ) -> tuple[int, float]:
        """(credits, USD) of one kind of video in this server, with its own credit table."""
        row = await self.bot.store.guild_settings(guild_id) if guild_id is not None else None
        credits = quota.credit_table(self.bot.settings, row, model)[(resolution, duration)]
        return credits, video_models.price(self.bot.settings, model, resolution, duration)

    async def cheapest(self, guild_id: int | None) -> tuple[int, float]:
        """The fewest credits and dollars any video this server offers costs."""
        row = await self.bot.store.guild_settings(guild_id) if guild_id is not None else None
        settings = self.bot.settings
        allowed = await self.allowed_models(guild_id) or video_models.MODEL_KEYS
        credits = min(min(quota.credit_table(settings, row, m).values()) for m in allowed)
        usd = min(video_models.price(settings, m, r, d) for m in allowed for r, d in quota.VIDEO_KINDS)
        return credits, usd

    async def member_prefs(self, interaction: discord.Interaction) -> Preferences:
        """The member's /preferences in this server (none outside one)."""
        if interaction.guild_id is None:
            return Preferences()
        return await self.bot.store.member_prefs(interaction.guild_id, interaction.user.id)

    def interaction_request(self, interaction: discord.Interaction, **fields: object) -> JobRequest:
        user = interaction.user
        return JobRequest(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=user.id,
            user_name=str(user),
            role_ids=member_roles(user),
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=interaction.created_at + self.bot.token_lifetime(),
            **fields,  # type: ignore[arg-type]  # each field arrives with its JobRequest type
        )

    def card_view(self, job: Job) -> discord.ui.View | None:
        reporter = self.bot.reporter
        return reporter.card_view(job) if reporter is not None and reporter.card_view else None

    async def start_from_interaction(
        self, interaction: discord.Interaction, request: JobRequest
    ) -> Job | None:
        """Admit, answer with the job card, remember where the card is, start the job."""
        job, refusal = await self.admit(request)
        if job is None:
            await reply(interaction, refusal)
            return None
        try:
            await interaction.response.send_message(
                embed=cards.job_card(job),
                allowed_mentions=discord.AllowedMentions.none(),
                view=or_missing(self.card_view(job)),
            )
        except discord.HTTPException as exc:
            log.warning("job=%s the job card could not be posted (%s); cancelling", job.id, exc.status)
            await self.bot.runner.cancel(job.id, "Discord didn't accept the answer in time.")
            return None
        metrics.first_response(interaction.created_at, discord.utils.utcnow())
        try:
            card = await interaction.original_response()
            job = await self.bot.store.update_job(
                job.id, card_channel_id=card.channel.id, card_message_id=card.id
            )
        except discord.HTTPException as exc:
            log.warning("job=%s could not read back the job card (%s)", job.id, exc.status)
        self.bot.runner.start_job(job.id)
        return job

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
        chosen = preferences.resolve(
            await self.member_prefs(interaction),
            allowed=await self.allowed_models(interaction.guild_id),
            has_image=image is not None,
            has_last_frame=last_frame is not None,
            duration=duration,
            resolution=resolution,
            prompt_expansion=prompt_expansion,
            model=model,
        )
        refusal = check_options(prompt, chosen.duration, chosen.resolution, camera)
        if refusal is None and image is not None:
            refusal = image_refusal(image, self.bot.settings.image_origins)
        if refusal is None and last_frame is not None:
            problem = image_refusal(last_frame, self.bot.settings.image_origins)
            refusal = f"Last frame: {problem}" if problem else None
        if refusal:
            await reply(interaction, refusal)
            return
        request = self.interaction_request(
            interaction,
            prompt=prompt.strip(),
            duration=chosen.duration,
            resolution=chosen.resolution,
            prompt_expansion=chosen.prompt_expansion,
            camera=camera,
            image_url=image.url if image else None,
            image_name=image.filename if image else None,
            entry="slash",
            model=chosen.model,
            last_frame_url=last_frame.url if last_frame else None,
            last_frame_name=last_frame.filename if last_frame else None,
        )
        job = await self.start_from_interaction(interaction, request)
        if job is not None and image is not None and last_frame is not None:
            warning = video_models.aspect_warning(
                (image.width, image.height), (last_frame.width, last_frame.height)
            )
            if warning:
                with contextlib.suppress(discord.HTTPException):
                    await interaction.followup.send(warning, ephemeral=True)

    # "Animate image" -------------------------------------------------------------------------------------
    async def animate_image(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Message context menu: check the image and the member's allowance, then ask for the prompt."""
        source, refusal = pick_image(message, self.bot.settings.image_origins)
        if source is None:
            await reply(interaction, refusal or NO_IMAGE)
            return
        refusal = await self.precheck(interaction)
        if refusal:
            await reply(interaction, refusal)
            return
        self._targets[(interaction.user.id, message.id)] = source
        while len(self._targets) > TARGET_CACHE:
            self._targets.popitem(last=False)
        allowed = await self.allowed_models(interaction.guild_id)
        chosen = preferences.resolve(await self.member_prefs(interaction), allowed=allowed, has_image=True)
        modal = settings_modal(
            f"hailuo:m:animate:{message.id}", "Animate image", duration=chosen.duration,
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
        refusal = check_options(form.prompt, form.duration, form.resolution)
        if refusal:
            await reply(interaction, refusal)
            return
        source = self._targets.pop((interaction.user.id, message_id), None)
        if source is None:  # the bot restarted while the modal was open: look at the message again
            source, refusal = await self._fetch_image(interaction, message_id)
            if source is None:
                await reply(interaction, refusal or NO_IMAGE)
                return
        request = self.interaction_request(
            interaction,
            prompt=form.prompt,
            duration=form.duration,
            resolution=form.resolution,
            prompt_expansion=form.prompt_expansion,
            image_url=source.url,
            image_name=source.filename,
            entry="context",
            source_message_id=message_id,
            model=form.model,
        )
        await self.start_from_interaction(interaction, request)

    async def _fetch_image(
        self, interaction: discord.Interaction, message_id: int
    ) -> tuple[ImageSource | None, str | None]:
        channel = interaction.channel
        if channel is None or not hasattr(channel, "fetch_message"):
            return None, NO_IMAGE
        try:
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            return None, "That message was deleted, so its image can't be animated."
        except discord.HTTPException:
            return None, "I couldn't read that message again. Use “Animate image” on it once more."
        return pick_image(message, self.bot.settings.image_origins)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Generate(bot))
