"""Generation front end: /video, and the shared path every entry point ends in.

Thin by design: parse what Discord sent, run the cheap checks, let the runner admit the job (atomic quota),
answer with the public job card inside Discord's 3-second window, then hand the job to the runner.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import cards, media
from bot.app import reply
from bot.models import CAMERA_MOVES, Job, JobRequest
from bot.validation import blocklist_hit, check_options

if TYPE_CHECKING:
    from bot.app import HailuoBot

log = logging.getLogger("cogs.generate")


def member_roles(user: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(user, "roles", ()) if not role.is_default())


def image_refusal(attachment: discord.Attachment) -> str | None:
    """What Discord's attachment metadata already tells us, checked before answering."""
    meta = media.ImageMeta(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
    )
    try:
        media.check_image_metadata(meta)
    except media.ImageRejected as exc:
        return exc.user_message
    return None


class Generate(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

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
        hit = blocklist_hit(prompt, rules.get("blocklist") or [])
        if hit is not None:
            shown = "a blocked pattern" if hit.startswith("re:") else f"“{hit}”"
            return f"Your prompt contains {shown}, which this server doesn't allow. Change it and try again."
        return None

    async def admit(self, request: JobRequest) -> tuple[Job | None, str]:
        refusal = check_options(request.prompt, request.duration, request.resolution, request.camera)
        refusal = refusal or await self.server_rules(request.guild_id, request.channel_id, request.prompt)
        if refusal:
            return None, refusal
        job, decision = await self.bot.runner.submit(request)
        return job, decision.message

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
            **fields,  # type: ignore[arg-type]
        )

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
                embed=cards.job_card(job), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.warning("job=%s the job card could not be posted (%s); cancelling", job.id, exc.status)
            await self.bot.runner.cancel(job.id, "Discord didn't accept the answer in time.")
            return None
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
    )
    @app_commands.choices(
        duration=[
            app_commands.Choice(name="6 seconds", value=6),
            app_commands.Choice(name="10 seconds", value=10),
        ],
        resolution=[
            app_commands.Choice(name="768P", value="768P"),
            app_commands.Choice(name="1080P", value="1080P"),
        ],
        camera=[app_commands.Choice(name=move, value=move) for move in CAMERA_MOVES],
    )
    @app_commands.guild_only()
    async def video(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        duration: int = 6,
        resolution: str = "768P",
        prompt_expansion: bool = True,
        camera: str | None = None,
    ) -> None:
        refusal = check_options(prompt, duration, resolution, camera)
        if refusal is None and image is not None:
            refusal = image_refusal(image)
        if refusal:
            await reply(interaction, refusal)
            return
        request = self.interaction_request(
            interaction,
            prompt=prompt.strip(),
            duration=duration,
            resolution=resolution,
            prompt_expansion=prompt_expansion,
            camera=camera,
            image_url=image.url if image else None,
            image_name=image.filename if image else None,
            entry="slash",
        )
        await self.start_from_interaction(interaction, request)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Generate(bot))
