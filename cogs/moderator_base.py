"""What the moderator cogs (/quota in `cogs/quota.py`, /settings in `cogs/server_settings.py`) share.

Every moderator command is moderator-only twice over: `default_permissions(manage_guild)` hides it from
members in Discord's UI, and `interaction_check` refuses anyone else at run time (Manage Server, or the
moderator role set with /settings modrole). Every change goes through the store, which records who made it
in `policy_changes`.

The pure rules for moderator input live in `bot/core/blocklist.py` (entries and the pattern guard) and
`bot/core/quota.py` (credit words and costs), so they can be tested without Discord.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.core.i18n import Text
from bot.discord_side.answers import reply
from bot.discord_side.permissions import require_moderator

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.moderation")  # one logger for every moderator change

MOD_PERMS = discord.Permissions(manage_guild=True)


class ModeratorCog(commands.Cog):
    """The run-time moderator check and the small helpers every moderator command uses."""

    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await require_moderator(interaction)

    def _ids(self, interaction: discord.Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None
        return interaction.guild_id, interaction.user.id

    async def _done(self, interaction: discord.Interaction, text: Text | str, change: str) -> None:
        log.info("guild=%s moderator=%s %s", interaction.guild_id, interaction.user.id, change)
        await reply(interaction, text)
