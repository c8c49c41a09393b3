"""A server's settings and the rules that apply to one member, as typed values.

The store builds these from its rows (`from_row`); everything else reads their attributes. `resolve` is the
one place where a server's settings fall back to the bot's defaults (the environment): a value the server
set wins, an unset one (NULL) falls back. For credits 0 is a value (it blocks); -1 (`UNLIMITED`) means no
limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import parse_iso
from .settings import Period, Settings

UNLIMITED = -1


def _json_list(raw: Any) -> list[Any] | None:
    """A stored JSON list (or one already decoded); None when unset or unreadable."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return list(raw) if isinstance(raw, list | tuple) else None


def _credit_costs(raw: Any) -> dict[str, int]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw else {}
        except ValueError:
            return {}
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class GuildSettings:
    """A server's own settings row, as a moderator left it: None means "not set" (the bot's default)."""

    guild_id: int
    quota_credits: int | None = None  # per member per period; 0 blocks; UNLIMITED; None: the default
    quota_period: Period | None = None
    budget_usd: float | None = None  # monthly, in USD
    user_max_concurrent: int | None = None
    guild_max_concurrent: int | None = None
    mod_role_id: int | None = None
    modlog_channel_id: int | None = None
    spoiler: bool = False
    allowed_channels: tuple[int, ...] = ()  # empty: every channel
    blocklist: tuple[str, ...] = ()
    credit_costs: Mapping[str, int] = field(default_factory=dict)  # "768P/6" -> credits (/quota set-cost)
    allowed_models: tuple[str, ...] | None = None  # None: every model, later ones included
    updated_at: datetime | None = None
    updated_by: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> GuildSettings:
        """From a whole guild_settings row (JSON columns encoded or already decoded)."""
        period = row["quota_period"]
        budget = row["budget_usd"]
        models = _json_list(row["allowed_models"])
        return cls(
            guild_id=int(row["guild_id"]),
            quota_credits=_optional_int(row["quota_credits"]),
            quota_period=Period(period) if period else None,
            budget_usd=None if budget is None else float(budget),
            user_max_concurrent=_optional_int(row["user_max_concurrent"]),
            guild_max_concurrent=_optional_int(row["guild_max_concurrent"]),
            mod_role_id=_optional_int(row["mod_role_id"]),
            modlog_channel_id=_optional_int(row["modlog_channel_id"]),
            spoiler=bool(row["spoiler"]),
            allowed_channels=tuple(int(c) for c in _json_list(row["allowed_channels"]) or ()),
            blocklist=tuple(str(e) for e in _json_list(row["blocklist"]) or ()),
            credit_costs=_credit_costs(row["credit_table"]),
            allowed_models=None if models is None else tuple(str(k) for k in models),
            updated_at=parse_iso(row["updated_at"]),
            updated_by=_optional_int(row["updated_by"]),
        )

    def changed(self, fields: Mapping[str, Any]) -> GuildSettings:
        """These settings with `fields` (guild_settings columns, as written) applied."""
        return GuildSettings.from_row({**self._columns(), **fields})

    def _columns(self) -> dict[str, Any]:
        return {
            "guild_id": self.guild_id,
            "quota_credits": self.quota_credits,
            "quota_period": self.quota_period,
            "budget_usd": self.budget_usd,
            "user_max_concurrent": self.user_max_concurrent,
            "guild_max_concurrent": self.guild_max_concurrent,
            "mod_role_id": self.mod_role_id,
            "modlog_channel_id": self.modlog_channel_id,
            "spoiler": self.spoiler,
            "allowed_channels": list(self.allowed_channels),
            "blocklist": list(self.blocklist),
            "credit_table": dict(self.credit_costs),
            "allowed_models": None if self.allowed_models is None else list(self.allowed_models),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }

    def resolved(self, settings: Settings) -> ServerRules:
        return resolve(settings, self)


@dataclass(frozen=True)
class ServerRules:
    """What applies on a server once its unset settings fall back to the bot's defaults."""

    credits: int  # per member per period; 0: members may not generate; UNLIMITED
    period: Period
    user_max_concurrent: int
    guild_max_concurrent: int
    budget_usd: float | None  # None: no monthly budget
    credits_default: bool = False  # the credits are the bot's DEFAULT_QUOTA_CREDITS
    budget_default: bool = False  # the budget is the bot's MONTHLY_BUDGET_USD

    @property
    def limit(self) -> int | None:
        """Credits per period, None when unlimited."""
        return None if self.credits == UNLIMITED else self.credits


def resolve(settings: Settings, guild: GuildSettings | None = None) -> ServerRules:
    """The server's rules: each setting it has set, else the bot's default. `guild` None: outside a server.

    Credits and the budget fall back only when unset (NULL): 0 credits blocks. The caps on running jobs
    fall back when unset or 0 (a cap of 0 is never stored: the commands take 1 and up)."""
    guild = guild or GuildSettings(0)
    own_budget = guild.budget_usd is not None
    return ServerRules(
        credits=settings.default_quota_credits if guild.quota_credits is None else guild.quota_credits,
        period=guild.quota_period or Period(settings.default_quota_period),
        user_max_concurrent=guild.user_max_concurrent or settings.user_max_concurrent,
        guild_max_concurrent=guild.guild_max_concurrent or settings.guild_max_concurrent,
        budget_usd=guild.budget_usd if own_budget else settings.monthly_budget_usd,
        credits_default=guild.quota_credits is None,
        budget_default=not own_budget and settings.monthly_budget_usd is not None,
    )


@dataclass(frozen=True)
class MemberOverride:
    """A moderator's rules for one member (a member_policy row)."""

    user_id: int
    credits: int | None = None  # beats the member's roles; None: no override
    blocked: bool = False
    max_concurrent: int | None = None
    usage_reset_at: datetime | None = None  # /quota reset: the member's usage counts from here

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MemberOverride:
        return cls(
            user_id=int(row["user_id"]),
            credits=_optional_int(row["credits"]),
            blocked=bool(row["blocked"]),
            max_concurrent=_optional_int(row["max_concurrent"]),
            usage_reset_at=parse_iso(row["usage_reset_at"]),
        )


@dataclass(frozen=True)
class PolicySources:
    """Everything stored that decides one member's policy, before it is resolved."""

    guild: GuildSettings | None
    member: MemberOverride | None
    roles: Mapping[int, int]  # role id -> credits, only for roles the member has


@dataclass(frozen=True)
class MemberPolicy:
    """The rules that apply to one member, resolved from defaults, server, roles and overrides."""

    limit: int | None  # credits per period; None = unlimited; 0 = may not generate
    period: Period
    blocked: bool
    user_max_concurrent: int
    guild_max_concurrent: int
    budget_usd: float | None
    usage_reset_at: datetime | None = None  # a moderator's /quota reset: usage counts from here


def resolve_member(settings: Settings, sources: PolicySources) -> MemberPolicy:
    """The server's rules (`resolve`), then the member's best role (unlimited beats any number), then the
    member's own override."""
    rules = resolve(settings, sources.guild)
    member = sources.member or MemberOverride(0)
    limit = rules.limit
    if sources.roles:
        values = list(sources.roles.values())
        limit = None if UNLIMITED in values else max(values)
    if member.credits is not None:
        limit = None if member.credits == UNLIMITED else member.credits
    return MemberPolicy(
        limit=limit,
        period=rules.period,
        blocked=member.blocked,
        user_max_concurrent=member.max_concurrent or rules.user_max_concurrent,
        guild_max_concurrent=rules.guild_max_concurrent,
        budget_usd=rules.budget_usd,
        usage_reset_at=member.usage_reset_at,
    )


@dataclass(frozen=True)
class UsageSnapshot:
    """What a member and their server have used, read inside the admission transaction."""

    used_credits: int  # reserved + charged in the member's current period
    granted_credits: int  # bonus grants in the member's current period
    user_active: int
    guild_active: int
    guild_month_usd: float  # reserved + charged this calendar month


# Moderator overviews ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleLimit:
    role_id: int
    credits: int  # UNLIMITED, 0 or a number


@dataclass(frozen=True)
class PolicyChange:
    actor_id: int | None
    change: str  # JSON of what changed
    at: str  # ISO 8601


@dataclass(frozen=True)
class PolicyOverview:
    """What /quota show and /settings show list: role tiers, member overrides, recent changes."""

    roles: tuple[RoleLimit, ...]
    members: tuple[MemberOverride, ...]
    changes: tuple[PolicyChange, ...]
