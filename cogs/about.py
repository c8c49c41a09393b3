"""/about: how to use the bot, this server's policy in one line, and the version. Always ephemeral."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.core import quota, video_models, wording
from bot.core.i18n import Text, _, join, plural, render
from bot.core.policy import GuildSettings
from bot.core.settings import Period, Settings
from bot.discord_side.embeds import Embed

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.about")

FLAGS = "(`--duration 10`, `--resolution 1080P`, `--no-expansion`, `--model hailuo-2.3`)"


def how_to_use(bot_mention: str, sees_replies: bool) -> Text:
    """`sees_replies`: the bot has the Message Content intent, so a mention may reply to anyone's image."""
    if sees_replies:
        mention = _(
            "**Mention {bot}** with a prompt, attaching an image or replying to one {flags}.",
            bot=bot_mention,
            flags=FLAGS,
        )
    else:
        mention = _(
            "**Mention {bot}** with a prompt and an attached image {flags}; for an image someone else "
            "posted, use Animate image instead.",
            bot=bot_mention,
            flags=FLAGS,
        )
    return join(
        _(
            "**/video** `prompt` — a video from text; add `image` to animate a picture, `last_frame` for "
            "the picture it ends on (Hailuo-02), `model` to pick the model."
        ),
        _("**Right-click a message with an image → Apps → Animate image** — then write the prompt."),
        mention,
        _("**/usage** shows your credits, **/jobs** your videos."),
        sep="\n",
    )


def policy_line(settings: Settings, guild: GuildSettings, month_usd: float) -> Text:
    """The server's policy in one line: default credits per member and period, then the budget if any."""
    rules = guild.resolved(settings)
    credits, period = rules.credits, rules.period
    parts: list[Text] = []
    if credits == quota.UNLIMITED:
        parts.append(_("Unlimited credits per member."))
    elif credits == 0:
        parts.append(_("Videos are off for members by default (moderators can allow roles or members)."))
    elif period == Period.DAY:
        parts.append(
            plural("{count} credit per member per day.", "{count} credits per member per day.", credits)
        )
    elif period == Period.WEEK:
        parts.append(
            plural("{count} credit per member per week.", "{count} credits per member per week.", credits)
        )
    else:
        parts.append(
            plural("{count} credit per member per month.", "{count} credits per member per month.", credits)
        )
    budget, default = rules.budget_usd, rules.budget_default
    if budget is not None:
        spent, total = wording.money(month_usd), wording.money(budget)
        if settings.novita_mode == "simulate":  # kept apart from real spending
            parts.append(
                _("Server budget: {spent} of {total} a month in simulated videos.", spent=spent, total=total)
            )
        elif default:
            parts.append(
                _(
                    "Server budget: {spent} of {total} a month used (the bot's default).",
                    spent=spent,
                    total=total,
                )
            )
        else:
            parts.append(_("Server budget: {spent} of {total} a month used.", spent=spent, total=total))
    return join(*parts)


class About(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="about", description="How to use the bot, this server's limits, and its version"
    )
    async def about(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)

        def say(text: Text | str) -> str:
            return render(text, locale)

        bot_user = self.bot.user
        mention = bot_user.mention if bot_user else "Hailuo Bot"
        intro = _("Short videos from a prompt, and optionally an image, with MiniMax Hailuo models.")
        embed = Embed(
            title=f"Hailuo Bot {__version__}",
            description=say(intro)
            + "\n\n"
            + say(how_to_use(mention, sees_replies=self.bot.intents.message_content)),
            colour=discord.Colour.blurple(),
        )
        settings = self.bot.settings
        if interaction.guild_id is not None:
            roles = tuple(r.id for r in getattr(interaction.user, "roles", ()) if not r.is_default())
            store = self.bot.store
            mine = await quota.member_usage(store, settings, interaction.guild_id, interaction.user.id, roles)
            guild = await store.guild_settings(interaction.guild_id)
            embed.add_field(
                name=say(_("This server")),
                value=say(policy_line(settings, guild, mine.usage.guild_month_usd)),
                inline=False,
            )
            embed.add_field(name=say(_("You")), value=say(mine.summary()), inline=False)
            allowed = video_models.allowed_models(guild)
            embed.add_field(
                name=say(_("Credits per video")),
                value=say(video_models.cost_lines(settings, allowed, guild))[:1024],
                inline=False,
            )
        else:
            embed.add_field(
                name=say(_("This server")),
                value=say(_("Use /about in a server to see its limits.")),
                inline=False,
            )
        if self.bot.engine is not None and self.bot.engine.simulated:
            embed.add_field(
                name=say(_("⚠️ Trial mode")),
                value=say(_("Videos are simulated on this bot; nothing is sent to the video service.")),
                inline=False,
            )
        embed.set_footer(
            text=say(_("Hailuo Bot v{version} · MiniMax Hailuo models through Novita", version=__version__))
        )
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(About(bot))
