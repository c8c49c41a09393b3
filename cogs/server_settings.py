"""/settings: who may make videos, where, with which words, the moderation log, spoilers and models.

Moderator-only like /quota (`cogs/moderator_base.py`). The cog also wires the moderation log and the spoiler
setting into the reporter.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import quota, video_models
from bot.core.blocklist import MAX_BLOCKLIST, MAX_PATTERN, EntryRejected, normalise_entry
from bot.core.models import Job, parse_iso
from bot.core.policy import GuildSettings
from bot.discord_side.app import reply
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed, cut
from bot.discord_side.modlog import ModerationLog, safe_text
from cogs.moderator_base import MOD_PERMS, ModeratorCog

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.moderation")


def mention_list(ids: list[int], kind: str = "@", empty: str = "None") -> str:
    shown = [f"<{kind}{i}>" for i in ids[:40]]
    more = f" …and {len(ids) - 40} more" if len(ids) > 40 else ""
    return (", ".join(shown) + more) if shown else empty


MAX_CHANNELS = 25


class ServerSettings(ModeratorCog):
    settings_group = app_commands.Group(
        name="settings",
        description="Moderators: who may make videos, where, with which words, and the moderation log",
        default_permissions=MOD_PERMS,
        guild_only=True,
    )

    def __init__(self, bot: HailuoBot) -> None:
        super().__init__(bot)
        self.moderation_log = ModerationLog(bot, bot.store) if bot.engine is not None else None

    async def cog_load(self) -> None:
        reporter = self.bot.reporter
        if reporter is not None and self.moderation_log is not None:
            reporter.spoiler = self.spoiler

    async def cog_unload(self) -> None:
        reporter = self.bot.reporter
        if reporter is not None and reporter.spoiler == self.spoiler:
            reporter.spoiler = None

    @commands.Cog.listener("on_job_final")
    async def on_job_final(self, job: Job) -> None:
        """Every ending (and a later redelivery) goes to the moderation log, when the server set one."""
        if self.moderation_log is not None:
            await self.moderation_log.on_final(job)

    async def spoiler(self, job: Job) -> bool:
        if job.guild_id is None:
            return False
        return (await self.bot.store.guild_settings(job.guild_id)).spoiler

    # /settings ---------------------------------------------------------------------------------------------
    @settings_group.command(
        name="show", description="Blocked members, allowed channels, blocklist, log and spoilers"
    )
    async def settings_show(self, interaction: discord.Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        row = await self.bot.store.guild_settings(guild_id)
        overview = await self.bot.store.policy_overview(guild_id)
        blocked = [m.user_id for m in overview.members if m.blocked]
        entries = row.blocklist
        embed = Embed(title="⚙️ Server settings", colour=COLOURS["working"])
        embed.add_field(
            name="Allowed channels",
            value=mention_list(list(row.allowed_channels), "#", "All"),
            inline=False,
        )
        embed.add_field(name="Blocked members", value=mention_list(blocked), inline=False)
        embed.add_field(
            name=f"Prompt blocklist ({len(entries)})",
            value=" · ".join(safe_text(e, MAX_PATTERN) for e in entries) or "Empty",
            inline=False,
        )
        modlog = row.modlog_channel_id
        embed.add_field(name="Moderation log", value=f"<#{modlog}>" if modlog else "Off", inline=True)
        embed.add_field(name="Results as spoilers", value="On" if row.spoiler else "Off", inline=True)
        embed.add_field(
            name="Models", value=video_models.names(video_models.allowed_models(row)), inline=True
        )
        mod_role = row.mod_role_id
        embed.add_field(
            name="Moderator role",
            value=f"<@&{mod_role}> (and Manage Server)" if mod_role else "Manage Server only",
            inline=True,
        )
        changes = [
            f"{_when(c.at)} <@{c.actor_id}>: {safe_text(_change_text(c.change), 120)}"
            for c in overview.changes
        ]
        embed.add_field(name="Recent changes", value="\n".join(changes) or "None", inline=False)
        await reply(interaction, "", embed=embed)

    @settings_group.command(name="block", description="Stop a member from making videos here")
    @app_commands.describe(member="The member")
    async def block(self, interaction: discord.Interaction, member: discord.Member | discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_member_policy(guild_id, member.id, actor, blocked=True)
        await self._done(
            interaction,
            f"{member.mention} is blocked: they can't make videos here until /settings unblock. "
            "Videos already in progress finish normally.",
            f"block {member.id}",
        )

    @settings_group.command(name="unblock", description="Let a blocked member make videos again")
    @app_commands.describe(member="The member")
    async def unblock(self, interaction: discord.Interaction, member: discord.Member | discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_member_policy(guild_id, member.id, actor, blocked=False)
        await self._done(interaction, f"{member.mention} can make videos again.", f"unblock {member.id}")

    @settings_group.command(
        name="channels", description="Where videos may be made (no channels listed: everywhere)"
    )
    @app_commands.describe(action="Add or remove a channel, or clear the list", channel="The channel")
    @app_commands.choices(
        action=[
            app_commands.Choice(name="Add", value="add"),
            app_commands.Choice(name="Remove", value="remove"),
            app_commands.Choice(name="Clear (allow everywhere)", value="clear"),
        ]
    )
    async def channels(
        self, interaction: discord.Interaction, action: str, channel: discord.TextChannel | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        if action not in ("add", "remove", "clear"):
            await reply(interaction, "Action must be add, remove or clear.")
            return
        if channel is None and action != "clear":
            await reply(interaction, "Choose the channel to add or remove.")
            return

        def change(row: GuildSettings) -> tuple[dict[str, Any] | None, tuple[list[int], str | None]]:
            allowed = list(row.allowed_channels)
            if action == "clear":
                allowed = []
            elif channel is not None and action == "add":
                if channel.id in allowed:
                    return None, (allowed, f"{channel.mention} is already allowed.")
                if len(allowed) >= MAX_CHANNELS:
                    return None, (
                        allowed,
                        f"At most {MAX_CHANNELS} channels can be listed; remove one first.",
                    )
                allowed.append(channel.id)
            elif channel is not None:
                if channel.id not in allowed:
                    return None, (allowed, f"{channel.mention} isn't on the list.")
                allowed.remove(channel.id)
            return {"allowed_channels": allowed}, (allowed, None)

        allowed, refusal = await self.bot.store.change_guild_settings(guild_id, actor, change)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        where = mention_list(allowed, "#") if allowed else "every channel"
        await self._done(interaction, f"Videos can now be made in {where}.", f"channels {action} {allowed}")

    @settings_group.command(
        name="blocklist", description="Words, phrases or re: patterns a prompt may not contain"
    )
    @app_commands.describe(
        action="Add, remove, list or clear", entry="A word or phrase, or re: and a regular expression"
    )
    @app_commands.choices(
        action=[
            app_commands.Choice(name="Add", value="add"),
            app_commands.Choice(name="Remove", value="remove"),
            app_commands.Choice(name="List", value="list"),
            app_commands.Choice(name="Clear", value="clear"),
        ]
    )
    async def blocklist(
        self,
        interaction: discord.Interaction,
        action: str,
        entry: app_commands.Range[str, 1, 210] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        if action == "list":
            entries = (await self.bot.store.guild_settings(guild_id)).blocklist
            shown = "\n".join(f"• {safe_text(e, MAX_PATTERN)}" for e in entries)
            await reply(interaction, cut(f"The prompt blocklist ({len(entries)}):\n{shown}", 2000) if entries
                        else "The prompt blocklist is empty.")  # fmt: skip
            return
        if action not in ("add", "remove", "clear"):
            await reply(interaction, "Action must be add, remove, list or clear.")
            return
        if entry is None and action != "clear":
            await reply(interaction, "Give the entry to add or remove.")
            return
        # Read, decide and write in one store transaction: two moderators editing at once both count.
        ok, text = await self.bot.store.change_guild_settings(
            guild_id, actor, lambda row: _change_blocklist(row, action, entry)
        )
        if not ok:
            await reply(interaction, text)
            return
        await self._done(interaction, text, f"blocklist {action}")

    @settings_group.command(
        name="modlog", description="A channel where every finished video is recorded (empty: off)"
    )
    @app_commands.describe(channel="The moderation-log channel; leave empty to turn the log off")
    async def modlog(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        if channel is not None:
            try:
                await channel.send(
                    "📋 Hailuo Bot will record every finished video in this channel.",
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException:
                await reply(
                    interaction,
                    f"I can't post in {channel.mention}. Give me View Channel and Send Messages there, "
                    "then set it again.",
                )
                return
        await self.bot.store.set_guild_settings(
            guild_id, actor, modlog_channel_id=channel.id if channel else None
        )
        text = (
            f"Every finished video will be recorded in {channel.mention}."
            if channel
            else "The moderation log is off."
        )
        await self._done(interaction, text, f"modlog {channel.id if channel else None}")

    @settings_group.command(
        name="spoiler", description="Post finished videos as spoilers (blurred until clicked)"
    )
    @app_commands.describe(enabled="On: results are posted as spoilers")
    async def spoiler_setting(self, interaction: discord.Interaction, enabled: bool) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_guild_settings(guild_id, actor, spoiler=enabled)
        text = "New videos will be posted as spoilers." if enabled else "New videos will be posted normally."
        await self._done(interaction, text, f"spoiler {enabled}")

    @settings_group.command(name="modrole", description="A role whose members may use the moderator commands")
    @app_commands.describe(role="The moderator role; leave empty for Manage Server only")
    async def modrole(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_guild_settings(guild_id, actor, mod_role_id=role.id if role else None)
        text = (
            f"Members with {role.mention} can now use the moderator commands (as can Manage Server)."
            if role
            else "Only members with Manage Server can use the moderator commands now."
        )
        await self._done(interaction, text, f"modrole {role.id if role else None}")

    @settings_group.command(
        name="models", description="Which video models members may use here (default: all)"
    )
    @app_commands.describe(
        model="The model to switch on or off; leave empty to see the list (or, with allowed, allow all)",
        allowed="On: members may use it; off: they may not",
    )
    @app_commands.choices(
        model=[app_commands.Choice(name=m.name, value=m.key) for m in video_models.MODELS.values()]
    )
    async def models(
        self, interaction: discord.Interaction, model: str | None = None, allowed: bool | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        if model is not None and model not in video_models.MODELS:
            await reply(interaction, f"Choose one of {video_models.names(video_models.MODEL_KEYS)}.")
            return
        if allowed is None:  # show
            row = await self.bot.store.guild_settings(guild_id)
            await reply(interaction, "", embed=self.models_embed(video_models.allowed_models(row), row))
            return

        def choose(row: GuildSettings) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
            current = video_models.allowed_models(row)
            if model is None:
                chosen: tuple[str, ...] = video_models.MODEL_KEYS if allowed else ()
            elif allowed:
                chosen = (*current, model)
            else:
                chosen = tuple(k for k in current if k != model)
            return ({"allowed_models": video_models.encode_allowed(chosen)} if chosen else None), chosen

        # Read and write in one store transaction: two moderators switching models at once both count.
        chosen = await self.bot.store.change_guild_settings(guild_id, actor, choose)
        if not chosen:
            await reply(
                interaction,
                "At least one model must stay on. To stop videos here, use /quota set-default credits:0.",
            )
            return
        now_allowed = video_models.allowed_models(GuildSettings(guild_id, allowed_models=chosen))
        await self._done(
            interaction,
            f"Members here can now use {video_models.names(now_allowed)}.",
            f"models {list(now_allowed)}",
        )

    def models_embed(self, allowed: tuple[str, ...], row: GuildSettings) -> Embed:
        embed = Embed(title="🎬 Video models", colour=COLOURS["working"])
        for key, model in video_models.MODELS.items():
            state = "✅ allowed" if key in allowed else "⛔ switched off"
            embed.add_field(name=f"{model.name} — {state}", value=model.note or "—", inline=False)
        embed.add_field(
            name="Credits per video",
            value=video_models.cost_lines(
                self.bot.settings, video_models.MODEL_KEYS, row
            ),  # Embed cuts on send
            inline=False,
        )
        return embed


def _when(text: str) -> str:
    dt = parse_iso(text)
    return quota.discord_time(dt) if dt else "?"


def _change_text(raw: str) -> str:
    try:
        change = json.loads(raw)
    except ValueError:
        return raw
    return ", ".join(f"{k}={v}" for k, v in change.items()) if isinstance(change, dict) else str(change)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(ServerSettings(bot))


def _change_blocklist(
    row: GuildSettings, action: str, entry: str | None
) -> tuple[dict[str, Any] | None, tuple[bool, str]]:
    """The blocklist after `action` (fields to write, or None) and what to tell the moderator."""
    entries = list(row.blocklist)
    if action == "clear":
        return {"blocklist": []}, (True, "The prompt blocklist is empty now.")
    assert entry is not None
    if action == "add":
        try:
            value = normalise_entry(entry, entries)
        except EntryRejected as exc:
            return None, (False, str(exc))
        if any(e.casefold() == value.casefold() for e in entries):
            return None, (False, "That entry is already on the blocklist.")
        if len(entries) >= MAX_BLOCKLIST:
            return None, (False, f"The blocklist holds at most {MAX_BLOCKLIST} entries; remove one first.")
        added = f"Added to the blocklist: {safe_text(value, MAX_PATTERN)}. Prompts containing it are refused."
        return {"blocklist": [*entries, value]}, (True, added)
    wanted = entry.strip().casefold()
    kept = [e for e in entries if e.casefold() != wanted]
    if len(kept) == len(entries):
        return None, (False, "That entry isn't on the blocklist; /settings blocklist list shows it.")
    return {"blocklist": kept}, (True, "Removed from the blocklist.")
