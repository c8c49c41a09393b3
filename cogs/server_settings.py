"""/settings: who may make videos, where, with which words, the moderation log, spoilers and models.

Moderator-only like /quota (`cogs/moderator_base.py`). The cog also hears every job's ending for the
moderation log; the reporter reads the spoiler setting from the store itself. It is one `/settings` command
group (a little over 400 lines): Discord shows a group's subcommands together, and they share one atomic
read-change-write of the server's settings.
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
from bot.core.i18n import Text, _, render
from bot.core.models import Job, parse_iso
from bot.core.policy import GuildSettings
from bot.discord_side.answers import reply, speak
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed, cut
from bot.discord_side.modlog import ModerationLog, safe_text
from cogs.moderator_base import MOD_PERMS, ModeratorCog

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.moderation")


def mention_list(ids: list[int], kind: str = "@", empty: Text | str = "", locale: str | None = None) -> str:
    shown = [f"<{kind}{i}>" for i in ids[:40]]
    more = render(_(" …and {count} more", count=len(ids) - 40), locale) if len(ids) > 40 else ""
    return (", ".join(shown) + more) if shown else render(empty or _("None"), locale)


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

    @commands.Cog.listener("on_job_final")
    async def on_job_final(self, job: Job) -> None:
        """Every ending (and a later redelivery) goes to the moderation log, when the server set one."""
        if self.moderation_log is not None:
            await self.moderation_log.on_final(job)

    # /settings ---------------------------------------------------------------------------------------------
    @settings_group.command(
        name="show", description="Blocked members, allowed channels, blocklist, log and spoilers"
    )
    async def settings_show(self, interaction: discord.Interaction) -> None:
        guild_id, _actor = self._ids(interaction)
        locale = str(interaction.locale)

        def say(text: Text | str) -> str:
            return render(text, locale)

        row = await self.bot.store.guild_settings(guild_id)
        overview = await self.bot.store.policy_overview(guild_id)
        blocked = [m.user_id for m in overview.members if m.blocked]
        entries = row.blocklist
        embed = Embed(title=say(_("⚙️ Server settings")), colour=COLOURS["working"])
        embed.add_field(
            name=say(_("Allowed channels")),
            value=mention_list(list(row.allowed_channels), "#", _("All"), locale),
            inline=False,
        )
        embed.add_field(
            name=say(_("Blocked members")), value=mention_list(blocked, locale=locale), inline=False
        )
        embed.add_field(
            name=say(_("Prompt blocklist ({count})", count=len(entries))),
            value=" · ".join(safe_text(e, MAX_PATTERN) for e in entries) or say(_("Empty")),
            inline=False,
        )
        modlog = row.modlog_channel_id
        embed.add_field(
            name=say(_("Moderation log")), value=f"<#{modlog}>" if modlog else say(_("Off")), inline=True
        )
        spoilers = _("On") if row.spoiler else _("Off")
        embed.add_field(name=say(_("Results as spoilers")), value=say(spoilers), inline=True)
        embed.add_field(
            name=say(_("Models")), value=video_models.names(video_models.allowed_models(row)), inline=True
        )
        mod_role = row.mod_role_id
        role_text = (
            _("<@&{role}> (and Manage Server)", role=str(mod_role)) if mod_role else _("Manage Server only")
        )
        embed.add_field(name=say(_("Moderator role")), value=say(role_text), inline=True)
        changes = [  # the audit log's own words: setting names and values, as stored
            f"{_when(c.at)} <@{c.actor_id}>: {safe_text(_change_text(c.change), 120)}"
            for c in overview.changes
        ]
        embed.add_field(
            name=say(_("Recent changes")), value="\n".join(changes) or say(_("None")), inline=False
        )
        await reply(interaction, "", embed=embed)

    @settings_group.command(name="block", description="Stop a member from making videos here")
    @app_commands.describe(member="The member")
    async def block(self, interaction: discord.Interaction, member: discord.Member | discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_member_policy(guild_id, member.id, actor, blocked=True)
        await self._done(
            interaction,
            _(
                "{member} is blocked: they can't make videos here until /settings unblock. Videos already in "
                "progress finish normally.",
                member=member.mention,
            ),
            f"block {member.id}",
        )

    @settings_group.command(name="unblock", description="Let a blocked member make videos again")
    @app_commands.describe(member="The member")
    async def unblock(self, interaction: discord.Interaction, member: discord.Member | discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_member_policy(guild_id, member.id, actor, blocked=False)
        await self._done(
            interaction, _("{member} can make videos again.", member=member.mention), f"unblock {member.id}"
        )

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
            await reply(interaction, _("Action must be add, remove or clear."))
            return
        if channel is None and action != "clear":
            await reply(interaction, _("Choose the channel to add or remove."))
            return

        def change(row: GuildSettings) -> tuple[dict[str, Any] | None, tuple[list[int], Text | None]]:
            allowed = list(row.allowed_channels)
            if action == "clear":
                allowed = []
            elif channel is not None and action == "add":
                if channel.id in allowed:
                    return None, (allowed, _("{channel} is already allowed.", channel=channel.mention))
                if len(allowed) >= MAX_CHANNELS:
                    return None, (
                        allowed,
                        _("At most {count} channels can be listed; remove one first.", count=MAX_CHANNELS),
                    )
                allowed.append(channel.id)
            elif channel is not None:
                if channel.id not in allowed:
                    return None, (allowed, _("{channel} isn't on the list.", channel=channel.mention))
                allowed.remove(channel.id)
            return {"allowed_channels": allowed}, (allowed, None)

        allowed, refusal = await self.bot.store.change_guild_settings(guild_id, actor, change)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        if allowed:
            done = _("Videos can now be made in {channels}.", channels=mention_list(allowed, "#"))
        else:
            done = _("Videos can now be made in every channel.")
        await self._done(interaction, done, f"channels {action} {allowed}")

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
            if entries:
                head = speak(interaction, _("The prompt blocklist ({count}):", count=len(entries)))
                await reply(interaction, cut(f"{head}\n{shown}", 2000))
            else:
                await reply(interaction, _("The prompt blocklist is empty."))
            return
        if action not in ("add", "remove", "clear"):
            await reply(interaction, _("Action must be add, remove, list or clear."))
            return
        if entry is None and action != "clear":
            await reply(interaction, _("Give the entry to add or remove."))
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
                guild = interaction.guild
                await channel.send(  # the log speaks the server's language, like the lines that follow
                    render(
                        _("📋 Hailuo Bot will record every finished video in this channel."),
                        str(guild.preferred_locale) if guild is not None else None,
                    ),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException:
                await reply(
                    interaction,
                    _(
                        "I can't post in {channel}. Give me View Channel and Send Messages there, then set "
                        "it again.",
                        channel=channel.mention,
                    ),
                )
                return
        await self.bot.store.set_guild_settings(
            guild_id, actor, modlog_channel_id=channel.id if channel else None
        )
        text = (
            _("Every finished video will be recorded in {channel}.", channel=channel.mention)
            if channel
            else _("The moderation log is off.")
        )
        await self._done(interaction, text, f"modlog {channel.id if channel else None}")

    @settings_group.command(
        name="spoiler", description="Post finished videos as spoilers (blurred until clicked)"
    )
    @app_commands.describe(enabled="On: results are posted as spoilers")
    async def spoiler_setting(self, interaction: discord.Interaction, enabled: bool) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_guild_settings(guild_id, actor, spoiler=enabled)
        text = (
            _("New videos will be posted as spoilers.")
            if enabled
            else _("New videos will be posted normally.")
        )
        await self._done(interaction, text, f"spoiler {enabled}")

    @settings_group.command(name="modrole", description="A role whose members may use the moderator commands")
    @app_commands.describe(role="The moderator role; leave empty for Manage Server only")
    async def modrole(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_guild_settings(guild_id, actor, mod_role_id=role.id if role else None)
        text = (
            _(
                "Members with {role} can now use the moderator commands (as can Manage Server).",
                role=role.mention,
            )
            if role
            else _("Only members with Manage Server can use the moderator commands now.")
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
            await reply(
                interaction, _("Choose one of {models}.", models=video_models.names(video_models.MODEL_KEYS))
            )
            return
        if allowed is None:  # show
            row = await self.bot.store.guild_settings(guild_id)
            embed = self.models_embed(video_models.allowed_models(row), row, str(interaction.locale))
            await reply(interaction, "", embed=embed)
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
                _("At least one model must stay on. To stop videos here, use /quota set-default credits:0."),
            )
            return
        now_allowed = video_models.allowed_models(GuildSettings(guild_id, allowed_models=chosen))
        await self._done(
            interaction,
            _("Members here can now use {models}.", models=video_models.names(now_allowed)),
            f"models {list(now_allowed)}",
        )

    def models_embed(self, allowed: tuple[str, ...], row: GuildSettings, locale: str | None = None) -> Embed:
        def say(text: Text | str) -> str:
            return render(text, locale)

        embed = Embed(title=say(_("🎬 Video models")), colour=COLOURS["working"])
        for key, model in video_models.MODELS.items():
            state = _("✅ allowed") if key in allowed else _("⛔ switched off")
            embed.add_field(name=f"{model.name} — {say(state)}", value=say(model.note) or "—", inline=False)
        prices = video_models.cost_lines(self.bot.settings, video_models.MODEL_KEYS, row)
        embed.add_field(
            name=say(_("Credits per video")), value=say(prices), inline=False
        )  # Embed cuts on send
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
) -> tuple[dict[str, Any] | None, tuple[bool, Text]]:
    """The blocklist after `action` (fields to write, or None) and what to tell the moderator."""
    entries = list(row.blocklist)
    if action == "clear":
        return {"blocklist": []}, (True, _("The prompt blocklist is empty now."))
    assert entry is not None
    if action == "add":
        try:
            value = normalise_entry(entry, entries)
        except EntryRejected as exc:
            return None, (False, exc.user_message)
        if any(e.casefold() == value.casefold() for e in entries):
            return None, (False, _("That entry is already on the blocklist."))
        if len(entries) >= MAX_BLOCKLIST:
            return None, (
                False,
                _("The blocklist holds at most {count} entries; remove one first.", count=MAX_BLOCKLIST),
            )
        added = _(
            "Added to the blocklist: {entry}. Prompts containing it are refused.",
            entry=safe_text(value, MAX_PATTERN),
        )
        return {"blocklist": [*entries, value]}, (True, added)
    wanted = entry.strip().casefold()
    kept = [e for e in entries if e.casefold() != wanted]
    if len(kept) == len(entries):
        return None, (False, _("That entry isn't on the blocklist; /settings blocklist list shows it."))
    return {"blocklist": kept}, (True, _("Removed from the blocklist."))
