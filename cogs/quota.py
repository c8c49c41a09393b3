"""/quota: the moderators' controls over credits, limits and the monthly budget.

Moderator-only like /settings (`cogs/moderator_base.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core import quota, video_models, wording
from bot.core.errors import InvalidInput
from bot.core.i18n import Text, _, join, plural, render
from bot.core.models import utcnow
from bot.core.policy import GuildSettings
from bot.core.settings import Period
from bot.discord_side.answers import reply
from bot.discord_side.cards import COLOURS
from bot.discord_side.embeds import Embed
from bot.discord_side.permissions import role_ids

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot
from cogs.moderator_base import MOD_PERMS, ModeratorCog

PERIODS = [app_commands.Choice(name=p.value.capitalize(), value=p.value) for p in Period]
KINDS = [app_commands.Choice(name=f"{r} · {d} s", value=quota.video_kind(r, d)) for r, d in quota.VIDEO_KINDS]
CREDITS_HELP = "A number (0 blocks), “unlimited”, or “default”"
CREDITS_HELP_ROLE = "A number (0 blocks), “unlimited”, or “default” (removes the tier)"
CREDITS_HELP_USER = "A number (0 blocks), “unlimited”, or “default” (removes the override)"


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
        guild_id, _actor = self._ids(interaction)
        store, settings = self.bot.store, self.bot.settings
        row = await store.guild_settings(guild_id)
        overview = await store.policy_overview(guild_id)
        rules = row.resolved(settings)
        period = rules.period
        locale = str(interaction.locale)

        def say(text: Text | str) -> str:
            return render(text, locale)

        limit = quota.describe_limit(rules.credits, period)
        base = _("{limit} (the bot's default)", limit=limit) if rules.credits_default else limit
        embed = Embed(title=say(_("🎟️ Quota rules")), colour=COLOURS["working"])
        embed.add_field(name=say(_("Every member")), value=say(base), inline=False)
        prices = video_models.cost_lines(settings, video_models.allowed_models(row), row)
        embed.add_field(name=say(_("Credits per video")), value=say(prices)[:1024], inline=False)
        roles = [f"<@&{r.role_id}>: {say(quota.describe_limit(r.credits, period))}" for r in overview.roles]
        embed.add_field(
            name=say(_("Role tiers (a member's best role wins)")),
            value="\n".join(roles) or say(_("None")),
            inline=False,
        )
        overrides = []
        for m in overview.members:
            parts: list[Text] = []
            if m.credits is not None:
                parts.append(quota.describe_limit(m.credits, period))
            if m.max_concurrent:
                parts.append(_("{count} at a time", count=m.max_concurrent))
            if m.blocked:
                parts.append(_("blocked"))
            overrides.append(f"<@{m.user_id}>: " + say(join(*parts, sep=", ")))
        embed.add_field(
            name=say(_("Member overrides")), value="\n".join(overrides) or say(_("None")), inline=False
        )
        user_cap, guild_cap = rules.user_max_concurrent, rules.guild_max_concurrent
        caps = _("{member} per member · {server} for the server", member=user_cap, server=guild_cap)
        embed.add_field(name=say(_("At the same time")), value=say(caps), inline=False)
        budget = await quota.budget_status(store, guild_id, row, settings=settings)
        budget_text: Text = (
            wording.budget_line(budget.left_usd, budget.budget_usd, budget.renews_at, budget.default)
            if budget
            else _("None")
        )
        embed.add_field(name=say(_("Monthly budget")), value=say(budget_text), inline=False)
        if member is not None:
            usage = await self._usage(guild_id, member)
            embed.add_field(
                name=say(_("For {name}", name=member.display_name)), value=say(usage.summary()), inline=False
            )
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
            except InvalidInput as exc:
                await reply(interaction, exc.user_message)
                return
        if period is not None:
            if period not in {p.value for p in Period}:
                await reply(interaction, _("Period must be day, week or month."))
                return
            fields["quota_period"] = period
        if member_jobs is not None:
            fields["user_max_concurrent"] = member_jobs
        if server_jobs is not None:
            fields["guild_max_concurrent"] = server_jobs
        if not fields:
            await reply(
                interaction, _("Nothing changed: give credits, a period, member_jobs or server_jobs.")
            )
            return
        row = await quota.set_defaults(self.bot.store, guild_id, actor, fields)
        rules = row.resolved(self.bot.settings)
        period_now, limit = rules.period, rules.credits
        user_cap, guild_cap = rules.user_max_concurrent, rules.guild_max_concurrent
        await self._done(
            interaction,
            plural(
                "Every member now gets {limit}, with up to {count} video in progress each and {server} for "
                "the server. Role tiers and member overrides still apply.",
                "Every member now gets {limit}, with up to {count} videos in progress each and {server} for "
                "the server. Role tiers and member overrides still apply.",
                user_cap,
                limit=quota.describe_limit(limit, period_now),
                server=guild_cap,
            ),
            f"set-default {fields}",
        )

    @quota_group.command(
        name="set-role", description="A credit limit for members with a role (the best role wins)"
    )
    @app_commands.describe(role="The role", credits=CREDITS_HELP_ROLE)
    async def set_role(
        self, interaction: discord.Interaction, role: discord.Role, credits: app_commands.Range[str, 1, 20]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        try:
            limit = quota.parse_limit(credits)
        except InvalidInput as exc:
            await reply(interaction, exc.user_message)
            return
        await self.bot.store.set_role_limit(guild_id, role.id, limit, actor)
        if limit is None:
            text = _(
                "{role} no longer has its own limit; its members get the server's default.", role=role.mention
            )
        else:
            text = _(
                "Members with {role} now get {limit} per period (their best role wins; a member override "
                "beats roles).",
                role=role.mention,
                limit=quota.describe_limit(limit),
            )
        await self._done(interaction, text, f"set-role {role.id} {limit}")

    @quota_group.command(name="set-user", description="A limit for one member that beats their roles")
    @app_commands.describe(
        member="The member",
        credits=CREDITS_HELP_USER,
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
            except InvalidInput as exc:
                await reply(interaction, exc.user_message)
                return
        if max_jobs is not None:
            fields["max_concurrent"] = max_jobs or None
        if not fields:
            await reply(interaction, _("Nothing changed: give credits, max_jobs, or both."))
            return
        await self.bot.store.set_member_policy(guild_id, member.id, actor, **fields)
        usage = await self._usage(guild_id, member)
        await self._done(
            interaction,
            plural(
                "Saved for {member}: {usage}, up to {count} video at a time.",
                "Saved for {member}: {usage}, up to {count} videos at a time.",
                usage.policy.user_max_concurrent,
                member=member.mention,
                usage=usage.summary(),
            ),
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
            plural(
                "Gave {member} {count} bonus credit for this period: {usage}.",
                "Gave {member} {count} bonus credits for this period: {usage}.",
                credits,
                member=member.mention,
                usage=usage.summary(),
            ),
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
            _(
                "{member}'s usage this period is cleared: {usage}. Videos already made still count toward "
                "the server's budget and reports.",
                member=member.mention,
                usage=usage.summary(),
            ),
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
        text: Text
        if status is None:
            text = _("The server has no monthly budget now: only member quotas limit spending.")
        else:
            line = wording.budget_line(status.left_usd, status.budget_usd, status.renews_at, status.default)
            if status.default:
                text = _(
                    "The server's own budget is removed; the bot's default of {budget} a month applies: "
                    "{status}.",
                    budget=wording.money(status.budget_usd),
                    status=line,
                )
            else:
                text = _(
                    "The monthly budget is now {budget}: {status}. A video that would pass it is refused.",
                    budget=wording.money(status.budget_usd),
                    status=line,
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
                raise InvalidInput(_("Pick one of the listed kinds of video."))
            cost = quota.parse_cost(credits)
        except InvalidInput as exc:
            await reply(interaction, exc.user_message)
            return
        table = await quota.set_cost(self.bot.store, guild_id, actor, video, cost)
        res, _sep, dur = video.partition("/")
        now_cost = quota.credit_table(self.bot.settings, GuildSettings(guild_id, credit_costs=table))[
            (res, int(dur))
        ]
        await self._done(
            interaction,
            _("Now: {price}.", price=wording.price(res, int(dur), now_cost)),
            f"set-cost {video}",
        )


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Quota(bot))
