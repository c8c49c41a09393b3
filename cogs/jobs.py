"""/jobs: the caller's active and recent videos in this server, with Cancel for a job still waiting locally
and Redeliver for one that could not be posted (from the retained copy). The buttons are the persistent
`JobAction` buttons of bot/discord_side/job_actions.py; their presses land in cogs/buttons.py, which refreshes
this list after acting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord import app_commands, ui
from discord.ext import commands
from discord.utils import MISSING

from bot.core.i18n import Text, _, render
from bot.core.models import DeliveryRoute, Job, JobState
from bot.core.quota import discord_time
from bot.discord_side import cards
from bot.discord_side.embeds import Embed
from bot.discord_side.job_actions import WAITING, JobAction

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

LISTED = 10
MAX_BUTTONS = 20  # four rows of five


def result_link(job: Job) -> Text | str:
    if job.state != JobState.DELIVERED:
        return ""
    if job.delivered_via == DeliveryRoute.DM:
        return _(" · sent to you by DM")
    if job.result_channel_id and job.result_message_id:
        url = f"https://discord.com/channels/{job.guild_id}/{job.result_channel_id}/{job.result_message_id}"
        return _(" · [open]({url})", url=url)
    return ""


class Jobs(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    async def render(self, guild_id: int, user_id: int, locale: str | None = None) -> tuple[Embed, ui.View]:
        """The list as an embed (prompts never ping there) and its buttons, in `locale` (the reader's)."""

        def say(text: Text | str) -> str:
            return render(text, locale)

        jobs = await self.bot.store.jobs_for_user(guild_id, user_id, limit=LISTED)
        view = ui.View(timeout=None)
        embed = Embed(title=say(_("🎞️ Your videos in this server")), colour=cards.COLOURS["muted"])
        if not jobs:
            embed.description = say(_("You haven't made any videos here yet. Try /video."))
            return embed, view
        kept = await asyncio.gather(*(self._kept(job) for job in jobs))
        lines = []
        for job, has_video in zip(jobs, kept, strict=True):
            lines.append(self._line(job, has_video, locale))
            if len(view.children) >= MAX_BUTTONS:
                continue
            if job.state in WAITING:
                view.add_item(JobAction("cancel", job.id, label=say(_("Cancel #{id}", id=str(job.id)))))
            elif job.state == JobState.UNDELIVERED and has_video:
                view.add_item(JobAction("redeliver", job.id, label=say(_("Redeliver #{id}", id=str(job.id)))))
        embed.description = "\n\n".join(lines)
        footer = _("Your last {count} videos. Cancelling a waiting video returns its credits.", count=LISTED)
        embed.set_footer(text=say(footer))
        return embed, view

    async def _kept(self, job: Job) -> bool:
        if job.state != JobState.UNDELIVERED or not job.video_path:
            return False
        return await asyncio.to_thread(Path(job.video_path).exists)

    def _line(self, job: Job, has_video: bool, locale: str | None) -> str:
        prompt = discord.utils.escape_markdown(cards.short_prompt(job.prompt, 80))
        kind = render(_("{seconds} s", seconds=job.duration), locale)
        head = f"**#{job.id}** · {kind} {job.resolution} · {discord_time(job.created_at)}\n{prompt}"
        if job.state == JobState.UNDELIVERED:
            state = render(
                _("📦 Not delivered yet: press Redeliver to post it.")
                if has_video
                else _("📦 Not delivered, and the video is no longer kept."),
                locale,
            )
        else:
            state = cards.state_line(job, self.bot.runner.queue_position(job.id), locale=locale)
        return f"{head}\n{state}{render(result_link(job), locale)}"

    @app_commands.command(name="jobs", description="Your recent and active videos in this server")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        embed, view = await self.render(interaction.guild_id, interaction.user.id, str(interaction.locale))
        await interaction.response.send_message(
            embed=embed, ephemeral=True, view=view if view.children else MISSING
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Jobs(bot))
