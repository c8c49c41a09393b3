"""/usage (any member, about themselves; moderators about anyone) and /server-usage (moderators)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import quota, reports, spend_chart, video_models, wording
from bot.core.i18n import Text, _, join, plural, render
from bot.core.models import Job, utcnow
from bot.core.report_rows import MemberTotals, ReportRow
from bot.discord_side.answers import reply, speak
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed
from bot.discord_side.permissions import is_moderator, moderator_only, role_ids
from bot.discord_side.report_embed import report_embed

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

CSV_MAX_BYTES = 8 * 1024 * 1024  # under every server's upload limit
NO_SPEND = {
    "day": _("Nothing was spent today, so there is no chart."),
    "week": _("Nothing was spent this week, so there is no chart."),
    "month": _("Nothing was spent this month, so there is no chart."),
    "all": _("Nothing was spent yet, so there is no chart."),
}
CSV_TOO_LARGE = _("The CSV is too large to attach for this period; choose a shorter one.")
OTHERS_REFUSED = _(
    "Only moderators can see another member's usage. Use /usage without a member to see your own."
)


def active_text(jobs: list[Job]) -> Text:
    if not jobs:
        return _("None")
    shown = ", ".join(f"#{job.id}" for job in jobs[:10]) + ("…" if len(jobs) > 10 else "")
    return plural("{count} in progress: {jobs}", "{count} in progress: {jobs}", len(jobs), jobs=shown)


def credits_text(usage: quota.MemberUsage) -> Text:
    policy = usage.policy
    if policy.blocked:
        return _("Blocked from making videos on this server.")
    if usage.allowance is None or usage.left is None:
        return _("Unlimited credits.")
    if usage.allowance == 0:
        return _("Video generation isn't enabled here for this member (0 credits).")
    parts: list[Text] = [wording.remaining(usage.left, usage.allowance, policy.period)]
    if usage.usage.granted_credits:
        parts.append(
            plural(
                "including {count} bonus credit",
                "including {count} bonus credits",
                usage.usage.granted_credits,
            )
        )
    parts.append(plural("{count} used", "{count} used", usage.usage.used_credits))
    parts.append(wording.resets(usage.reset_at))
    return join(*parts, sep=" · ")


def lifetime_text(totals: MemberTotals) -> Text:
    return join(
        plural("{count} video made", "{count} videos made", totals.succeeded),
        plural("{count} failed", "{count} failed", totals.failed),
        plural("{count} credit used", "{count} credits used", totals.credits),
        plural("{count} second of video", "{count} seconds of video", totals.seconds),
        sep=" · ",
    )


class Usage(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    # /usage ------------------------------------------------------------------------------------------------
    @app_commands.command(name="usage", description="Your video credits: used and left, when they reset")
    @app_commands.describe(member="Moderators only: see this member's usage instead of yours")
    @app_commands.guild_only()
    async def usage(
        self, interaction: discord.Interaction, member: discord.Member | discord.User | None = None
    ) -> None:
        assert interaction.guild_id is not None
        target = member or interaction.user
        if target.id != interaction.user.id and not await is_moderator(interaction):
            await reply(interaction, OTHERS_REFUSED)
            return
        yours = target.id == interaction.user.id
        embed = await self.usage_embed(
            interaction.guild_id, target, yours=yours, locale=str(interaction.locale)
        )
        await reply(interaction, "", embed=embed)

    async def usage_embed(
        self,
        guild_id: int,
        user: discord.abc.User,
        *,
        yours: bool,
        now: datetime | None = None,
        locale: str | None = None,
    ) -> Embed:
        """The member's credits, in `locale` (the reader's)."""

        def say(text: Text | str) -> str:
            return render(text, locale)

        now = now or utcnow()
        store, settings = self.bot.store, self.bot.settings
        usage, totals, active, row = await asyncio.gather(
            quota.member_usage(store, settings, guild_id, user.id, role_ids(user), now=now),
            store.member_totals(guild_id, user.id),
            store.active_jobs(guild_id, user.id),
            store.guild_settings(guild_id),
        )
        title = _("🎟️ Your video credits") if yours else _("🎟️ Video credits of {name}", name=user.display_name)
        embed = Embed(title=say(title), colour=COLOURS["working"])
        if not yours:
            embed.description = f"<@{user.id}>"
        embed.add_field(name=say(_("This period")), value=say(credits_text(usage)), inline=False)
        embed.add_field(name=say(_("In progress")), value=say(active_text(active)), inline=False)
        embed.add_field(name=say(_("All time here")), value=say(lifetime_text(totals)), inline=False)
        budget = await quota.budget_status(store, guild_id, row, now, settings)
        if budget is not None:
            line = wording.budget_line(budget.left_usd, budget.budget_usd, budget.renews_at, budget.default)
            embed.add_field(name=say(_("Server budget")), value=say(line), inline=False)
        embed.add_field(
            name=say(_("Credits per video")),
            value=say(video_models.cost_lines(settings, video_models.allowed_models(row), row))[:1024],
            inline=False,
        )
        return embed

    # /server-usage -----------------------------------------------------------------------------------------
    @app_commands.command(
        name="server-usage", description="Moderators: videos, cost and top members for this server"
    )
    @app_commands.describe(period="Which period to report (UTC)", csv="Attach every job as a CSV file")
    @app_commands.choices(
        period=[
            app_commands.Choice(name="Today", value="day"),
            app_commands.Choice(name="This week", value="week"),
            app_commands.Choice(name="This month", value="month"),
            app_commands.Choice(name="All time", value="all"),
        ]
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @moderator_only
    async def server_usage(
        self, interaction: discord.Interaction, period: str = "month", csv: bool = False
    ) -> None:
        if period not in reports.PERIOD_LABELS:
            await reply(interaction, _("Period must be day, week, month or all."))
            return
        guild_id = interaction.guild_id
        assert guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        now = utcnow()
        since = reports.period_since(period, now)
        store = self.bot.store
        rows, undelivered, row, spend = await asyncio.gather(
            store.report_rows(guild_id, since),
            store.undelivered_jobs(guild_id),
            store.guild_settings(guild_id),
            store.daily_spend(guild_id, since),
        )
        report = await asyncio.to_thread(reports.summarise, rows, period, since, undelivered)
        budget = await quota.budget_status(store, guild_id, row, now, self.bot.settings)
        embed = report_embed(report, budget, locale=str(interaction.locale))
        files: list[discord.File] = []
        notes: list[Text] = []
        stamp = now.strftime("%Y%m%d")
        series = await asyncio.to_thread(
            spend_chart.spend_series,
            spend,
            since,
            now,
            trial=store.trial,
            budget_usd=budget.budget_usd if budget else None,
        )
        series = series.named(
            await member_names(interaction.guild, [uid for uid, _name, _usd in series.members])
        )
        if csv:
            events = await store.report_events(guild_id, since)
            names = channel_names(interaction.guild, rows)
            data = await asyncio.to_thread(reports.csv_bytes, rows, events, names.get)
            if len(data) > CSV_MAX_BYTES:
                notes.append(CSV_TOO_LARGE)
            else:
                files.append(discord.File(io.BytesIO(data), filename=f"hailuo-usage-{period}-{stamp}.csv"))
        if series.empty:
            notes.append(NO_SPEND[period])
        else:
            png = await spend_chart.chart_png(series, period, str(interaction.locale))
            name = f"hailuo-usage-{period}-{stamp}.png"
            files.append(discord.File(io.BytesIO(png), filename=name))
            embed.set_image(url=f"attachment://{name}")
        await interaction.followup.send(
            "\n".join(speak(interaction, note) for note in notes),
            embed=embed,
            files=files,
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def member_names(guild: discord.Guild | None, user_ids: list[int]) -> dict[int, str]:
    """Display names of the charted members, from the cache or else asked of Discord (the bot has no
    members intent); one who left keeps the name stored with their jobs."""
    if guild is None:
        return {}

    async def one(user_id: int) -> discord.Member | None:
        member = guild.get_member(user_id)
        if member is not None:
            return member
        try:
            return await guild.fetch_member(user_id)
        except discord.HTTPException:
            return None

    members = await asyncio.gather(*(one(uid) for uid in user_ids))
    return {uid: m.display_name for uid, m in zip(user_ids, members, strict=True) if m is not None}


def channel_names(guild: discord.Guild | None, rows: Iterable[ReportRow]) -> dict[int, str]:
    """Channel names from the cache, read on the event loop (the CSV is written in a worker thread)."""
    names: dict[int, str] = {}
    for channel_id in {row.channel_id for row in rows if row.channel_id is not None}:
        channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
        if channel is not None:
            names[channel_id] = channel.name
    return names


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Usage(bot))
