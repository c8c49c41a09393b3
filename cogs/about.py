"""/about: how to use the bot, this server's policy in one line, and the version. Always ephemeral."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.core import quota, video_models
from bot.core.policy import GuildSettings
from bot.core.settings import Period, Settings
from bot.discord_side.embeds import Embed

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.about")

PER = {Period.DAY: "day", Period.WEEK: "week", Period.MONTH: "month"}


def how_to_use(bot_mention: str, sees_replies: bool) -> str:
    """`sees_replies`: the bot has the Message Content intent, so a mention may reply to anyone's image."""
    flags = "(`--duration 10`, `--resolution 1080P`, `--no-expansion`, `--model hailuo-2.3`)"
    if sees_replies:
        mention = f"**Mention {bot_mention}** with a prompt, attaching an image or replying to one {flags}."
    else:
        mention = (
            f"**Mention {bot_mention}** with a prompt and an attached image {flags}; for an image someone "
            "else posted, use Animate image instead."
        )
    return "\n".join(
        [
            "**/video** `prompt` — a video from text; add `image` to animate a picture, `last_frame` for "
            "the picture it ends on (Hailuo-02), `model` to pick the model.",
            "**Right-click a message with an image → Apps → Animate image** — then write the prompt.",
            mention,
            "**/usage** shows your credits, **/jobs** your videos.",
        ]
    )


def credit_prices(settings: Settings) -> str:
    """'6 s 768P = 1 · 10 s 768P = 2 · 6 s 1080P = 2'."""
    return " · ".join(f"{d} s {r} = {c}" for (r, d), c in settings.credit_table.items())


def policy_line(settings: Settings, guild: GuildSettings, month_usd: float) -> str:
    """The server's policy in one line: default credits per member and period, then the budget if any."""
    rules = guild.resolved(settings)
    credits, period = rules.credits, rules.period
    if credits == quota.UNLIMITED:
        line = "Unlimited credits per member"
    elif credits == 0:
        line = "Videos are off for members by default (moderators can allow roles or members)"
    else:
        line = f"{credits} credit{'s' if credits != 1 else ''} per member per {PER[period]}"
    line += f" ({credit_prices(settings)})"
    budget, default = rules.budget_usd, rules.budget_default
    if budget is not None:
        source = " (the bot's default)" if default else ""
        spent = "in simulated videos" if settings.novita_mode == "simulate" else "used"  # kept apart
        line += f" · server budget ${budget:.2f}/month{source}, ${month_usd:.2f} {spent}"
    return line + "."


class About(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="about", description="How to use the bot, this server's limits, and its version"
    )
    async def about(self, interaction: discord.Interaction) -> None:
        bot_user = self.bot.user
        mention = bot_user.mention if bot_user else "the bot"
        embed = Embed(
            title=f"Hailuo Bot {__version__}",
            description="Short videos from a prompt, and optionally an image, with MiniMax Hailuo-02.\n\n"
            + how_to_use(mention, sees_replies=self.bot.intents.message_content),
            colour=discord.Colour.blurple(),
        )
        settings = self.bot.settings
        if interaction.guild_id is not None:
            roles = tuple(r.id for r in getattr(interaction.user, "roles", ()) if not r.is_default())
            store = self.bot.store
            mine = await quota.member_usage(store, settings, interaction.guild_id, interaction.user.id, roles)
            guild = await store.guild_settings(interaction.guild_id)
            embed.add_field(
                name="This server",
                value=policy_line(settings, guild, mine.usage.guild_month_usd),
                inline=False,
            )
            embed.add_field(name="You", value=mine.summary(), inline=False)
            allowed = video_models.allowed_models(guild)
            embed.add_field(
                name="Models here (credits per video)",
                value=video_models.cost_lines(settings, allowed, guild)[:1024],
                inline=False,
            )
        else:
            embed.add_field(
                name="This server", value="Use /about in a server to see its limits.", inline=False
            )
        if self.bot.engine is not None and self.bot.engine.simulated:
            embed.add_field(
                name="⚠️ Trial mode",
                value="Videos are simulated on this bot; nothing is sent to the video service.",
                inline=False,
            )
        embed.set_footer(text=f"Hailuo Bot v{__version__} · MiniMax Hailuo models through Novita")
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(About(bot))
