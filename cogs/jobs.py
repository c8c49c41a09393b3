"""/jobs: the caller's active and recent videos in this server, with Cancel for a job still waiting locally
and Redeliver for one that could not be posted (from the retained copy). The buttons are the persistent
`JobAction` buttons of cogs/buttons.py, which refresh this list after acting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands, ui
from discord.ext import commands
from discord.utils import MISSING

from bot.core.models import DeliveryRoute, Job, JobState
from bot.core.quota import discord_time
from bot.discord_side import cards
from bot.discord_side.embeds import Embed
from cogs.buttons import WAITING, JobAction

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

LISTED = 10
MAX_BUTTONS = 20  # four rows of five


def result_link(job: Job) -> str:
    if job.state != JobState.DELIVERED:
        return ""
    if job.delivered_via == DeliveryRoute.DM:
        return " · sent to you by DM"
    if job.result_channel_id and job.result_message_id:
        url = f"https://discord.com/channels/{job.guild_id}/{job.result_channel_id}/{job.result_message_id}"
        return f" · [open]({url})"
    return ""


class Jobs(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    async def render(self, guild_id: int, user_id: int) -> tuple[Embed, ui.View]:
        """The list as an embed (prompts never ping there) and its buttons."""
        jobs = await self.bot.store.jobs_for_user(guild_id, user_id, limit=LISTED)
        view = ui.View(timeout=None)
        embed = Embed(title="🎞️ Your videos in this server", colour=cards.COLOURS["muted"])
        if not jobs:
            embed.description = "You haven't made any videos here yet. Try /video."
            return embed, view
        kept = await asyncio.gather(*(self._kept(job) for job in jobs))
        lines = []
        for job, has_video in zip(jobs, kept, strict=True):
            lines.append(self._line(job, has_video))
            if len(view.children) >= MAX_BUTTONS:
                continue
            if job.state in WAITING:
                view.add_item(JobAction("cancel", job.id, label=f"Cancel #{job.id}"))
            elif job.state == JobState.UNDELIVERED and has_video:
                view.add_item(JobAction("redeliver", job.id, label=f"Redeliver #{job.id}"))
        embed.description = "\n\n".join(lines)
        embed.set_footer(text=f"Your last {LISTED} videos. Cancelling a waiting video returns its credits.")
        return embed, view

    async def _kept(self, job: Job) -> bool:
        if job.state != JobState.UNDELIVERED or not job.video_path:
            return False
        return await asyncio.to_thread(Path(job.video_path).exists)

    def _line(self, job: Job, has_video: bool) -> str:
        prompt = discord.utils.escape_markdown(cards.short_prompt(job.prompt, 80))
        head = f"**#{job.id}** · {job.duration} s {job.resolution} · {discord_time(job.created_at)}\n{prompt}"
        if job.state == JobState.UNDELIVERED:
            state = (
                "📦 Not delivered yet: press Redeliver to post it."
                if has_video
                else "📦 Not delivered, and the video is no longer kept."
            )
        else:
            state = cards.state_line(job, self.bot.runner.queue_position(job.id))
        return f"{head}\n{state}{result_link(job)}"

    @app_commands.command(name="jobs", description="Your recent and active videos in this server")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        embed, view = await self.render(interaction.guild_id, interaction.user.id)
        await interaction.response.send_message(
            embed=embed, ephemeral=True, view=view if view.children else MISSING
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Jobs(bot))
