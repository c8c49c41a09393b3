"""Quota and budget policy: credits per video, fixed UTC periods, limits, concurrent caps.

The arithmetic here is pure; `admit` hands it to `Store.admit`, which runs it inside the one transaction
that also inserts the job and reserves its credits, so concurrent requests can never overspend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from . import video_models, wording
from .errors import InvalidInput
from .i18n import Text, _, plural
from .models import Job, JobRequest, utcnow
from .policy import (
    UNLIMITED,
    GuildSettings,
    MemberPolicy,
    PolicySources,
    UsageSnapshot,
    resolve,
    resolve_member,
)
from .settings import DURATIONS, RESOLUTIONS, Period, Settings
from .store import Store


def period_window(period: Period | str, now: datetime) -> tuple[datetime, datetime]:
    """The fixed UTC window containing `now`: (start, reset)."""
    period = Period(period)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return day, day + timedelta(days=1)
    if period == Period.WEEK:
        start = day - timedelta(days=day.weekday())  # Monday
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, nxt


def discord_time(dt: datetime, style: str = "R") -> str:
    """A Discord timestamp markup that each member's client shows in their own time zone."""
    return f"<t:{int(dt.timestamp())}:{style}>"


OPERATOR_POLICY = MemberPolicy(None, Period.DAY, False, 1_000_000, 1_000_000, None)


def effective_period_start(policy: MemberPolicy, now: datetime) -> datetime:
    """Where the member's usage is counted from: the period's start, or a later /quota reset in it.

    A reset is a marker, not a refund: the jobs stay charged (the server's budget and the reports still
    count them); only the member's own allowance starts over. Grants made before the reset in the same
    period are part of what it clears."""
    start = period_window(policy.period, now)[0]
    reset = policy.usage_reset_at
    return reset if reset is not None and start < reset <= now else start


class Refusal(StrEnum):
    BLOCKED = "blocked"
    NO_ACCESS = "no_access"
    QUOTA = "quota"
    BUDGET = "budget"
    USER_BUSY = "user_busy"
    GUILD_BUSY = "guild_busy"


@dataclass(frozen=True)
class Decision:
    ok: bool
    refusal: Refusal | None = None
    message: Text | str = ""
    retry_at: datetime | None = None
    left_after: int | None = None  # credits left in the period after this job (None = unlimited)
    policy: MemberPolicy | None = None


def decide(
    policy: MemberPolicy, usage: UsageSnapshot, credits: int, cost_usd: float, now: datetime
) -> Decision:
    """May this member start a job costing `credits` / `cost_usd` now? One plain sentence when not."""
    _start, reset = period_window(policy.period, now)
    _month_start, month_end = period_window(Period.MONTH, now)
    msg: Text
    if policy.blocked:
        msg = _("You can't make videos on this server. Ask a moderator if you think that's a mistake.")
        return Decision(False, Refusal.BLOCKED, msg, policy=policy)
    if policy.limit == 0 and usage.granted_credits == 0:
        msg = _("Video generation isn't enabled for you on this server. Ask a moderator for access.")
        return Decision(False, Refusal.NO_ACCESS, msg, policy=policy)
    if usage.user_active >= policy.user_max_concurrent:
        msg = plural(
            "You already have {active} videos in progress (the limit is {count}). Try again when one has "
            "finished.",
            "You already have {active} videos in progress (the limit is {count}). Try again when one has "
            "finished.",
            policy.user_max_concurrent,
            active=usage.user_active,
        )
        return Decision(False, Refusal.USER_BUSY, msg, policy=policy)
    if usage.guild_active >= policy.guild_max_concurrent:
        msg = plural(
            "This server already has {count} video in progress. Try again in a few minutes.",
            "This server already has {count} videos in progress. Try again in a few minutes.",
            usage.guild_active,
        )
        return Decision(False, Refusal.GUILD_BUSY, msg, policy=policy)
    left: int | None = None
    if policy.limit is not None:
        allowance = policy.limit + usage.granted_credits
        left = max(0, allowance - usage.used_credits)
        if credits > left:
            when = discord_time(reset)
            remaining = wording.remaining(left, allowance, policy.period)
            if left == 0:
                msg = _("You have {remaining}. Your credits reset {when}.", remaining=remaining, when=when)
            else:
                msg = plural(
                    "This video needs {count} credit and you have {remaining}. "
                    "Pick a shorter or 768P video, or wait until your credits reset {when}.",
                    "This video needs {count} credits and you have {remaining}. "
                    "Pick a shorter or 768P video, or wait until your credits reset {when}.",
                    credits,
                    remaining=remaining,
                    when=when,
                )
            return Decision(False, Refusal.QUOTA, msg, retry_at=reset, left_after=left, policy=policy)
        left -= credits
    if policy.budget_usd is not None and usage.guild_month_usd + cost_usd > policy.budget_usd + 1e-9:
        msg = _(
            "This server's monthly video budget ({budget}) would be passed by this video. It renews {when}; "
            "a moderator can raise it with /quota budget.",
            budget=wording.money(policy.budget_usd),
            when=discord_time(month_end),
        )
        return Decision(False, Refusal.BUDGET, msg, retry_at=month_end, policy=policy)
    return Decision(True, left_after=left, policy=policy)


async def admit(
    store: Store,
    settings: Settings,
    request: JobRequest,
    now: datetime | None = None,
    lease: tuple[str, datetime] | None = None,
) -> tuple[Job | None, Decision]:
    """Check every limit and, if allowed, create the job with its credits reserved — atomically.
    `lease` (owner, until) makes the admitting process the job's driver from the first moment."""
    now = now or utcnow()
    table = video_models.credit_table(settings, request.model)
    if request.guild_id is not None and not request.operator:
        table = credit_table(settings, await store.guild_settings(request.guild_id), request.model)
    credits = table[(request.resolution, request.duration)]
    cost = video_models.price(settings, request.model, request.resolution, request.duration)
    holder: dict[str, MemberPolicy] = {}

    def windows(sources: PolicySources) -> tuple[datetime, datetime]:
        policy = holder["policy"] = OPERATOR_POLICY if request.operator else resolve_member(settings, sources)
        return effective_period_start(policy, now), period_window(Period.MONTH, now)[0]

    def judge(sources: PolicySources, usage: UsageSnapshot) -> Decision:
        return decide(holder["policy"], usage, credits, cost, now)

    return await store.admit(
        {
            **request.columns(),
            "credits": credits,
            "cost_usd": cost,
            "created_at": now,
            **({"lease_owner": lease[0], "lease_until": lease[1]} if lease else {}),
        },
        request.role_ids,
        windows,
        judge,
        lambda d: d.ok,
    )


@dataclass(frozen=True)
class MemberUsage:
    policy: MemberPolicy
    usage: UsageSnapshot
    period_start: datetime
    reset_at: datetime

    @property
    def allowance(self) -> int | None:
        return None if self.policy.limit is None else self.policy.limit + self.usage.granted_credits

    @property
    def left(self) -> int | None:
        return None if self.allowance is None else max(0, self.allowance - self.usage.used_credits)

    def summary(self) -> Text:
        """'3 of 5 left today · resets <t:…:R>' (or 'Unlimited credits')."""
        return wording.remaining_line(self.left, self.allowance, self.policy.period, self.reset_at)


async def member_usage(
    store: Store,
    settings: Settings,
    guild_id: int | None,
    user_id: int,
    role_ids: tuple[int, ...] = (),
    now: datetime | None = None,
) -> MemberUsage:
    now = now or utcnow()
    policy = resolve_member(settings, await store.policy(guild_id, user_id, role_ids))
    start, reset = effective_period_start(policy, now), period_window(policy.period, now)[1]
    usage = await store.usage(guild_id, user_id, start, period_window(Period.MONTH, now)[0])
    return MemberUsage(policy, usage, start, reset)


# Moderator input and the server's own tables ------------------------------------------------------------
VIDEO_KINDS = tuple((res, dur) for res in RESOLUTIONS for dur in DURATIONS if (res, dur) != ("1080P", 10))
_INHERIT_WORDS = frozenset({"default", "inherit", "none", "clear", "reset"})
_UNLIMITED_WORDS = frozenset({"unlimited", "infinite", "no limit", "∞", "-1"})
MAX_CREDITS = 100_000


def parse_limit(text: str) -> int | None:
    """A moderator's credit limit: a number (0 blocks), `unlimited` (-1), or `default` (None: inherit)."""
    word = " ".join(text.strip().casefold().split())
    if word in _INHERIT_WORDS:
        return None
    if word in _UNLIMITED_WORDS:
        return UNLIMITED
    if word.isdigit() and int(word) <= MAX_CREDITS:
        return int(word)
    raise InvalidInput(
        _(
            "“{text}” isn't a credit limit. Use a number (0 blocks), “unlimited”, or “default”.",
            text=text.strip()[:40],
        )
    )


def describe_limit(value: int | None, period: Period | None = None) -> Text:
    """'5 credits a day', 'unlimited', 'blocked (0 credits)'; None reads 'default'."""
    if value is None:
        return _("default")
    if value == UNLIMITED:
        return _("unlimited")
    if value == 0:
        return _("blocked (0 credits)")
    if period == Period.DAY:
        return plural("{count} credit a day", "{count} credits a day", value)
    if period == Period.WEEK:
        return plural("{count} credit a week", "{count} credits a week", value)
    if period == Period.MONTH:
        return plural("{count} credit a month", "{count} credits a month", value)
    return plural("{count} credit", "{count} credits", value)


def video_kind(resolution: str, duration: int) -> str:
    return f"{resolution}/{duration}"


def credit_table(
    settings: Settings, guild: GuildSettings | None, model: str = video_models.DEFAULT_MODEL
) -> dict[tuple[str, int], int]:
    """Credits per kind of video for `model`: the settings' table (the model's own entries, else the base
    table) with this server's overrides on top (a /quota set-cost applies to every model)."""
    table = video_models.credit_table(settings, model)
    for key, value in (guild.credit_costs if guild else {}).items():
        res, _sep, dur = key.partition("/")
        if dur.isdigit() and (res, int(dur)) in table and value >= 0:
            table[(res, int(dur))] = value
    return table


@dataclass(frozen=True)
class BudgetStatus:
    budget_usd: float
    spent_usd: float  # reserved + charged this calendar month (UTC)
    renews_at: datetime
    default: bool = False  # the bot's MONTHLY_BUDGET_USD, not one the server set

    @property
    def left_usd(self) -> float:
        return max(0.0, self.budget_usd - self.spent_usd)

    def summary(self) -> Text:
        """'$3.20 of $5.00 left this month · renews <t:…:R>'."""
        return wording.budget_line(self.left_usd, self.budget_usd, self.renews_at, self.default)


async def budget_status(
    store: Store,
    guild_id: int,
    guild: GuildSettings | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> BudgetStatus | None:
    """The server's monthly budget (its own, else `settings`' MONTHLY_BUDGET_USD) and what is spent of it,
    or None when it has none."""
    now = now or utcnow()
    guild = guild if guild is not None else await store.guild_settings(guild_id)
    if settings is not None:
        rules = resolve(settings, guild)
        budget, default = rules.budget_usd, rules.budget_default
    else:
        budget, default = guild.budget_usd, False
    if budget is None:
        return None
    start, renews = period_window(Period.MONTH, now)
    return BudgetStatus(budget, await store.guild_spent(guild_id, start), renews, default)


def parse_cost(text: str) -> int | None:
    """Credits for one kind of video: a number from 0 to 1000, or `default` (None) for the bot's value."""
    word = text.strip().casefold()
    if word in ("default", "reset", "none", "clear"):
        return None
    if word.isdigit() and int(word) <= 1000:
        return int(word)
    raise InvalidInput(
        _("“{text}” isn't a credit cost. Use a number from 0 to 1000, or “default”.", text=text.strip()[:40])
    )


async def set_cost(
    store: Store, guild_id: int, actor_id: int | None, kind: str, cost: int | None
) -> dict[str, int]:
    """Set what one kind of video costs on this server (None: back to the bot's value); the server's
    overrides as written. Read and written in one transaction, so two moderators changing different kinds
    at once both count."""

    def change(guild: GuildSettings) -> tuple[dict[str, Any], dict[str, int]]:
        table = dict(guild.credit_costs)
        if cost is None:
            table.pop(kind, None)
        else:
            table[kind] = cost
        return {"credit_table": json.dumps(table) if table else None}, table

    return await store.change_guild_settings(guild_id, actor_id, change)


async def set_defaults(
    store: Store, guild_id: int, actor_id: int | None, fields: dict[str, Any]
) -> GuildSettings:
    """Write the server's default limits and return its settings as written, in one transaction (the
    answer shows this change, not a half of another moderator's)."""

    def change(guild: GuildSettings) -> tuple[dict[str, Any], GuildSettings]:
        return fields, guild.changed(fields)

    return await store.change_guild_settings(guild_id, actor_id, change)
