"""/quota and /settings: the moderators' controls over who may spend how much, where, and on what.

Every command here is moderator-only twice over: `default_permissions(manage_guild)` hides it from members
in Discord's UI, and the cog's `interaction_check` refuses anyone else at run time (Manage Server, or the
moderator role set with /settings modrole). Every change goes through the store, which records who made it
in `policy_changes`. The cog also wires the moderation log and the spoiler setting into the reporter.

The pure rules for moderator input live in `bot/core/blocklist.py` (entries and the pattern guard) and
`bot/core/quota.py` (credit words and costs), so they can be tested without Discord.
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
from bot.core.models import Job, parse_iso, utcnow
from bot.core.reports import plural
from bot.core.settings import Period
from bot.discord_side.app import reply
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed, cut
from bot.discord_side.modlog import ModerationLog, safe_text
from bot.discord_side.permissions import require_moderator, role_ids

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.moderation")


def mention_list(ids: list[int], kind: str = "@", empty: str = "None") -> str:
    shown = [f"<{kind}{i}>" for i in ids[:40]]
    more = f" …and {len(ids) - 40} more" if len(ids) > 40 else ""
    return (", ".join(shown) + more) if shown else empty


MAX_CHANNELS = 25


# The cog ------------------------------------------------------------------------------------------------
MOD_PERMS = discord.Permissions(manage_guild=True)
PERIODS = [app_commands.Choice(name=p.value.capitalize(), value=p.value) for p in Period]
KINDS = [app_commands.Choice(name=f"{r} · {d} s", value=quota.video_kind(r, d)) for r, d in quota.VIDEO_KINDS]
CREDITS_HELP = "A number (0 blocks), “unlimited”, or “default”"


class Moderation(commands.Cog):
    quota_group = app_commands.Group(
        name="quota",
        description="Moderators: credits, limits and the monthly budget",
        default_permissions=MOD_PERMS,
        guild_only=True,
    )
    settings_group = app_commands.Group(
        name="settings",
        description="Moderators: who may make videos, where, with which words, and the moderation log",
        default_permissions=MOD_PERMS,
        guild_only=True,
    )

    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        self.moderation_log = ModerationLog(bot, bot.store) if bot.engine is not None else None

    async def cog_load(self) -> None:
        reporter = self.bot.reporter
        if reporter is not None and self.moderation_log is not None:
            reporter.final_listeners.append(self.moderation_log.on_final)
            reporter.spoiler = self.spoiler

    async def cog_unload(self) -> None:
        reporter = self.bot.reporter
        if reporter is not None and self.moderation_log is not None:
            if self.moderation_log.on_final in reporter.final_listeners:
                reporter.final_listeners.remove(self.moderation_log.on_final)
            if reporter.spoiler == self.spoiler:
                reporter.spoiler = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await require_moderator(interaction)

    async def spoiler(self, job: Job) -> bool:
        if job.guild_id is None:
            return False
        return bool((await self.bot.store.guild_settings(job.guild_id)).get("spoiler"))

    def _ids(self, interaction: discord.Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None
        return interaction.guild_id, interaction.user.id

    async def _done(self, interaction: discord.Interaction, text: str, change: str) -> None:
        log.info("guild=%s moderator=%s %s", interaction.guild_id, interaction.user.id, change)
        await reply(interaction, text)

    async def _usage(self, guild_id: int, member: discord.abc.User) -> quota.MemberUsage:
        return await quota.member_usage(
            self.bot.store, self.bot.settings, guild_id, member.id, role_ids(member)
        )

    # /quota ------------------------------------------------------------------------------------------------
    @quota_group.command(name="show", description="The server's quota rules, or how they apply to one member")
    @app_commands.describe(member="Show how the rules apply to this member")
    async def quota_show(
        self, interaction: discord.Interaction, member: discord.Member | discord.User | None = None
    ) -> None:
        guild_id, _ = self._ids(interaction)
        store, settings = self.bot.store, self.bot.settings
        row = await store.guild_settings(guild_id)
        overview = await store.policy_overview(guild_id)
        period = Period(row.get("quota_period") or settings.default_quota_period)
        limit = row.get("quota_credits")
        default = quota.describe_limit(settings.default_quota_credits, period)
        base = quota.describe_limit(limit, period) if limit is not None else f"{default} (the bot's default)"
        embed = Embed(title="🎟️ Quota rules", colour=COLOURS["working"])
        embed.add_field(name="Every member", value=base, inline=False)
        table = quota.credit_table(settings, row)
        costs = " · ".join(f"{r} {d} s: {table[(r, d)]}" for r, d in quota.VIDEO_KINDS)
        embed.add_field(name="Credits per video", value=costs, inline=False)
        roles = [
            f"<@&{r['role_id']}>: {quota.describe_limit(r['credits'], period)}" for r in overview["roles"]
        ]
        embed.add_field(
            name="Role tiers (a member's best role wins)",
            value="\n".join(roles) or "None",
            inline=False,
        )
        overrides = [
            f"<@{m['user_id']}>: "
            + ", ".join(
                part
                for part in (
                    quota.describe_limit(m["credits"], period) if m["credits"] is not None else "",
                    f"{m['max_concurrent']} at a time" if m["max_concurrent"] else "",
                    "blocked" if m["blocked"] else "",
                )
                if part
            )
            for m in overview["members"]
        ]
        embed.add_field(name="Member overrides", value="\n".join(overrides) or "None", inline=False)
        user_cap = row.get("user_max_concurrent") or settings.user_max_concurrent
        guild_cap = row.get("guild_max_concurrent") or settings.guild_max_concurrent
        embed.add_field(
            name="At the same time", value=f"{user_cap} per member · {guild_cap} for the server", inline=False
        )
        budget = await quota.budget_status(store, guild_id, row, settings=settings)
        embed.add_field(name="Monthly budget", value=budget.summary() if budget else "None", inline=False)
        if member is not None:
            usage = await self._usage(guild_id, member)
            embed.add_field(name=f"For {member.display_name}", value=usage.summary(), inline=False)
        await reply(interaction, "", embed=embed)

    @quota_group.command(
        name="set-default", description="The limit every member gets, and the caps on running jobs"
    )
    @app_commands.describe(
        credits=CREDITS_HELP,
        period="How often credits renew (fixed UTC day, week or month)",
        member_jobs="Videos one member may have in progress at once",
        server_jobs="Videos the whole server may have in progress at once",
    )
    @app_commands.choices(period=PERIODS)
    async def set_default(
        self,
        interaction: discord.Interaction,
        credits: app_commands.Range[str, 1, 20] | None = None,
        period: str | None = None,
        member_jobs: app_commands.Range[int, 1, 100] | None = None,
        server_jobs: app_commands.Range[int, 1, 1000] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        fields: dict[str, Any] = {}
        if credits is not None:
            try:
                fields["quota_credits"] = quota.parse_limit(credits)
            except ValueError as exc:
                await reply(interaction, str(exc))
                return
        if period is not None:
            if period not in {p.value for p in Period}:
                await reply(interaction, "Period must be day, week or month.")
                return
            fields["quota_period"] = period
        if member_jobs is not None:
            fields["user_max_concurrent"] = member_jobs
        if server_jobs is not None:
            fields["guild_max_concurrent"] = server_jobs
        if not fields:
            await reply(interaction, "Nothing changed: give credits, a period, member_jobs or server_jobs.")
            return
        await self.bot.store.set_guild_settings(guild_id, actor, **fields)
        row = await self.bot.store.guild_settings(guild_id)
        settings = self.bot.settings
        period_now = Period(row.get("quota_period") or settings.default_quota_period)
        limit = row.get("quota_credits")
        limit = settings.default_quota_credits if limit is None else limit
        user_cap = row.get("user_max_concurrent") or settings.user_max_concurrent
        guild_cap = row.get("guild_max_concurrent") or settings.guild_max_concurrent
        await self._done(
            interaction,
            f"Every member now gets {quota.describe_limit(limit, period_now)}, with up to "
            f"{plural(user_cap, 'video')} in progress each and {guild_cap} for the server. Role tiers and "
            "member overrides still apply.",
            f"set-default {fields}",
        )

    @quota_group.command(
        name="set-role", description="A credit limit for members with a role (the best role wins)"
    )
    @app_commands.describe(role="The role", credits=CREDITS_HELP + " (removes the tier)")
    async def set_role(
        self, interaction: discord.Interaction, role: discord.Role, credits: app_commands.Range[str, 1, 20]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        try:
            limit = quota.parse_limit(credits)
        except ValueError as exc:
            await reply(interaction, str(exc))
            return
        await self.bot.store.set_role_limit(guild_id, role.id, limit, actor)
        if limit is None:
            text = f"{role.mention} no longer has its own limit; its members get the server's default."
        else:
            text = (
                f"Members with {role.mention} now get {quota.describe_limit(limit)} per period "
                "(their best role wins; a member override beats roles)."
            )
        await self._done(interaction, text, f"set-role {role.id} {limit}")

    @quota_group.command(name="set-user", description="A limit for one member that beats their roles")
    @app_commands.describe(
        member="The member",
        credits=CREDITS_HELP + " (removes the override)",
        max_jobs="Videos this member may have in progress at once (0: the server's default)",
    )
    async def set_user(
        self,
        interaction: discord.Interaction,
        member: discord.Member | discord.User,
        credits: app_commands.Range[str, 1, 20] | None = None,
        max_jobs: app_commands.Range[int, 0, 100] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        fields: dict[str, Any] = {}
        if credits is not None:
            try:
                fields["credits"] = quota.parse_limit(credits)
            except ValueError as exc:
                await reply(interaction, str(exc))
                return
        if max_jobs is not None:
            fields["max_concurrent"] = max_jobs or None
        if not fields:
            await reply(interaction, "Nothing changed: give credits, max_jobs, or both.")
            return
        await self.bot.store.set_member_policy(guild_id, member.id, actor, **fields)
        usage = await self._usage(guild_id, member)
        await self._done(
            interaction,
            f"Saved for {member.mention}: {usage.summary()}, up to "
            f"{plural(usage.policy.user_max_concurrent, 'video')} at a time.",
            f"set-user {member.id} {fields}",
        )

    @quota_group.command(name="grant", description="Give a member bonus credits for the current period")
    @app_commands.describe(member="The member", credits="Bonus credits", note="Why (kept in the audit log)")
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member | discord.User,
        credits: app_commands.Range[int, 1, 10_000],
        note: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.grant(guild_id, member.id, credits, actor, note)
        usage = await self._usage(guild_id, member)
        await self._done(
            interaction,
            f"Gave {member.mention} {plural(credits, 'bonus credit')} for this period: {usage.summary()}.",
            f"grant {member.id} {credits}",
        )

    @quota_group.command(
        name="reset", description="Clear what a member used this period (their credits start over)"
    )
    @app_commands.describe(member="The member")
    async def reset(self, interaction: discord.Interaction, member: discord.Member | discord.User) -> None:
        guild_id, actor = self._ids(interaction)
        await self.bot.store.set_member_policy(guild_id, member.id, actor, usage_reset_at=utcnow())
        usage = await self._usage(guild_id, member)
        await self._done(
            interaction,
            f"{member.mention}'s usage this period is cleared: {usage.summary()}. Videos already made "
            "still count toward the server's budget and reports.",
            f"reset {member.id}",
        )

    @quota_group.command(
        name="budget", description="The server's monthly spending limit in USD (0 removes it)"
    )
    @app_commands.describe(usd="Monthly budget in US dollars; 0 removes the budget")
    async def budget(
        self, interaction: discord.Interaction, usd: app_commands.Range[float, 0, 1_000_000]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        value = round(float(usd), 2) or None
        await self.bot.store.set_guild_settings(guild_id, actor, budget_usd=value)
        status = await quota.budget_status(self.bot.store, guild_id, settings=self.bot.settings)
        if status is None:
            text = "The server has no monthly budget now: only member quotas limit spending."
        elif status.default:
            text = (
                f"The server's own budget is removed; the bot's default of ${status.budget_usd:.2f} a month "
                f"applies: {status.summary()}."
            )
        else:
            text = (
                f"The monthly budget is now ${status.budget_usd:.2f}: {status.summary()}. A video that "
                "would pass it is refused."
            )
        await self._done(interaction, text, f"budget {value}")

    @quota_group.command(
        name="set-cost", description="How many credits one kind of video costs on this server"
    )
    @app_commands.describe(video="Kind of video", credits="Credits from 0 to 1000, or “default”")
    @app_commands.choices(video=KINDS)
    async def set_cost(
        self, interaction: discord.Interaction, video: str, credits: app_commands.Range[str, 1, 20]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        kinds = {quota.video_kind(r, d) for r, d in quota.VIDEO_KINDS}
        try:
            if video not in kinds:
                raise ValueError("Pick one of the listed kinds of video.")
            cost = quota.parse_cost(credits)
        except ValueError as exc:
            await reply(interaction, str(exc))
            return
        row = await self.bot.store.guild_settings(guild_id)
        raw = row.get("credit_table")
        table: dict[str, int] = json.loads(raw) if raw else {}
        if cost is None:
            table.pop(video, None)
        else:
            table[video] = cost
        await self.bot.store.set_guild_settings(
            guild_id, actor, credit_table=json.dumps(table) if table else None
        )
        res, _, dur = video.partition("/")
        now_cost = quota.credit_table(self.bot.settings, {"credit_table": json.dumps(table)})[(res, int(dur))]
        await self._done(
            interaction,
            f"A {res} {dur}-second video now costs {plural(now_cost, 'credit')} here.",
            f"set-cost {video}",
        )

    # /settings ---------------------------------------------------------------------------------------------
    @settings_group.command(
        name="show", description="Blocked members, allowed channels, blocklist, log and spoilers"
    )
    async def settings_show(self, interaction: discord.Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        row = await self.bot.store.guild_settings(guild_id)
        overview = await self.bot.store.policy_overview(guild_id)
        blocked = [m["user_id"] for m in overview["members"] if m["blocked"]]
        entries = row.get("blocklist") or []
        embed = Embed(title="⚙️ Server settings", colour=COLOURS["working"])
        embed.add_field(
            name="Allowed channels",
            value=mention_list(row.get("allowed_channels") or [], "#", "All"),
            inline=False,
        )
        embed.add_field(name="Blocked members", value=mention_list(blocked), inline=False)
        embed.add_field(
            name=f"Prompt blocklist ({len(entries)})",
            value=" · ".join(safe_text(e, MAX_PATTERN) for e in entries) or "Empty",
            inline=False,
        )
        modlog = row.get("modlog_channel_id")
        embed.add_field(name="Moderation log", value=f"<#{modlog}>" if modlog else "Off", inline=True)
        embed.add_field(name="Results as spoilers", value="On" if row.get("spoiler") else "Off", inline=True)
        embed.add_field(
            name="Models", value=video_models.names(video_models.allowed_models(row)), inline=True
        )
        mod_role = row.get("mod_role_id")
        embed.add_field(
            name="Moderator role",
            value=f"<@&{mod_role}> (and Manage Server)" if mod_role else "Manage Server only",
            inline=True,
        )
        changes = [
            f"{_when(c['at'])} <@{c['actor_id']}>: {safe_text(_change_text(c['change']), 120)}"
            for c in overview["changes"]
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
        allowed: list[int] = list(
            (await self.bot.store.guild_settings(guild_id)).get("allowed_channels") or []
        )
        if action == "clear":
            allowed = []
        elif channel is None:
            await reply(interaction, "Choose the channel to add or remove.")
            return
        elif action == "add":
            if channel.id in allowed:
                await reply(interaction, f"{channel.mention} is already allowed.")
                return
            if len(allowed) >= MAX_CHANNELS:
                await reply(interaction, f"At most {MAX_CHANNELS} channels can be listed; remove one first.")
                return
            allowed.append(channel.id)
        elif action == "remove":
            if channel.id not in allowed:
                await reply(interaction, f"{channel.mention} isn't on the list.")
                return
            allowed.remove(channel.id)
        else:
            await reply(interaction, "Action must be add, remove or clear.")
            return
        await self.bot.store.set_guild_settings(guild_id, actor, allowed_channels=allowed)
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
        entries: list[str] = list((await self.bot.store.guild_settings(guild_id)).get("blocklist") or [])
        if action == "list":
            shown = "\n".join(f"• {safe_text(e, MAX_PATTERN)}" for e in entries)
            await reply(interaction, cut(f"The prompt blocklist ({len(entries)}):\n{shown}", 2000) if entries
                        else "The prompt blocklist is empty.")  # fmt: skip
            return
        if action == "clear":
            entries = []
            text = "The prompt blocklist is empty now."
        elif entry is None:
            await reply(interaction, "Give the entry to add or remove.")
            return
        elif action == "add":
            try:
                value = normalise_entry(entry, entries)
            except EntryRejected as exc:
                await reply(interaction, str(exc))
                return
            if any(e.casefold() == value.casefold() for e in entries):
                await reply(interaction, "That entry is already on the blocklist.")
                return
            if len(entries) >= MAX_BLOCKLIST:
                await reply(
                    interaction, f"The blocklist holds at most {MAX_BLOCKLIST} entries; remove one first."
                )
                return
            entries.append(value)
            text = (
                f"Added to the blocklist: {safe_text(value, MAX_PATTERN)}. Prompts containing it are refused."
            )
        elif action == "remove":
            wanted = entry.strip().casefold()
            kept = [e for e in entries if e.casefold() != wanted]
            if len(kept) == len(entries):
                await reply(
                    interaction, "That entry isn't on the blocklist; /settings blocklist list shows it."
                )
                return
            entries = kept
            text = "Removed from the blocklist."
        else:
            await reply(interaction, "Action must be add, remove, list or clear.")
            return
        await self.bot.store.set_guild_settings(guild_id, actor, blocklist=entries)
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
        row = await self.bot.store.guild_settings(guild_id)
        current = video_models.allowed_models(row)
        if model is not None and model not in video_models.MODELS:
            await reply(interaction, f"Choose one of {video_models.names(video_models.MODEL_KEYS)}.")
            return
        if allowed is None:  # show
            await reply(interaction, "", embed=self.models_embed(current, row))
            return
        if model is None:
            chosen: tuple[str, ...] = video_models.MODEL_KEYS if allowed else ()
        elif allowed:
            chosen = (*current, model)
        else:
            chosen = tuple(k for k in current if k != model)
        if not chosen:
            await reply(
                interaction,
                "At least one model must stay on. To stop videos here, use /quota set-default credits:0.",
            )
            return
        await self.bot.store.set_guild_settings(
            guild_id, actor, allowed_models=video_models.encode_allowed(chosen)
        )
        now_allowed = video_models.allowed_models({"allowed_models": video_models.encode_allowed(chosen)})
        await self._done(
            interaction,
            f"Members here can now use {video_models.names(now_allowed)}.",
            f"models {list(now_allowed)}",
        )

    def models_embed(self, allowed: tuple[str, ...], row: dict[str, Any]) -> Embed:
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
    await bot.add_cog(Moderation(bot))
