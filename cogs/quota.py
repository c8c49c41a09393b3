"""/quota: the moderators' controls over credits, limits and the monthly budget.

Moderator-only like /settings (`cogs/moderator_base.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core import quota
from bot.core.models import utcnow
from bot.core.policy import GuildSettings
from bot.core.reports import plural
from bot.core.settings import Period
from bot.discord_side.app import reply
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed
from bot.discord_side.permissions import role_ids

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot
from cogs.moderator_base import MOD_PERMS, ModeratorCog

PERIODS = [app_commands.Choice(name=p.value.capitalize(), value=p.value) for p in Period]
KINDS = [app_commands.Choice(name=f"{r} · {d} s", value=quota.video_kind(r, d)) for r, d in quota.VIDEO_KINDS]
CREDITS_HELP = "A number (0 blocks), “unlimited”, or “default”"


class Quota(ModeratorCog):
    quota_group = app_commands.Group(
        name="quota",
        description="Moderators: credits, limits and the monthly budget",
        default_permissions=MOD_PERMS,
        guild_only=True,
    )

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
        rules = row.resolved(settings)
        period = rules.period
        limit = quota.describe_limit(rules.credits, period)
        base = f"{limit} (the bot's default)" if rules.credits_default else limit
        embed = Embed(title="🎟️ Quota rules", colour=COLOURS["working"])
        embed.add_field(name="Every member", value=base, inline=False)
        table = quota.credit_table(settings, row)
        costs = " · ".join(f"{r} {d} s: {table[(r, d)]}" for r, d in quota.VIDEO_KINDS)
        embed.add_field(name="Credits per video", value=costs, inline=False)
        roles = [f"<@&{r.role_id}>: {quota.describe_limit(r.credits, period)}" for r in overview.roles]
        embed.add_field(
            name="Role tiers (a member's best role wins)",
            value="\n".join(roles) or "None",
            inline=False,
        )
        overrides = [
            f"<@{m.user_id}>: "
            + ", ".join(
                part
                for part in (
                    quota.describe_limit(m.credits, period) if m.credits is not None else "",
                    f"{m.max_concurrent} at a time" if m.max_concurrent else "",
                    "blocked" if m.blocked else "",
                )
                if part
            )
            for m in overview.members
        ]
        embed.add_field(name="Member overrides", value="\n".join(overrides) or "None", inline=False)
        user_cap, guild_cap = rules.user_max_concurrent, rules.guild_max_concurrent
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
        row = await quota.set_defaults(self.bot.store, guild_id, actor, fields)
        rules = row.resolved(self.bot.settings)
        period_now, limit = rules.period, rules.credits
        user_cap, guild_cap = rules.user_max_concurrent, rules.guild_max_concurrent
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
        table = await quota.set_cost(self.bot.store, guild_id, actor, video, cost)
        res, _, dur = video.partition("/")
        now_cost = quota.credit_table(self.bot.settings, GuildSettings(guild_id, credit_costs=table))[
            (res, int(dur))
        ]
        await self._done(
            interaction,
            f"A {res} {dur}-second video now costs {plural(now_cost, 'credit')} here.",
            f"set-cost {video}",
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Quota(bot))
