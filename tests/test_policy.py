"""A server's settings as typed values: the one fallback to the bot's defaults (`resolve`), and what the
store builds from its rows on both engines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core import quota
from bot.core.models import utcnow
from bot.core.policy import (
    UNLIMITED,
    GuildSettings,
    MemberOverride,
    PolicySources,
    resolve,
    resolve_member,
)
from bot.core.settings import Period, Settings
from bot.core.store import Store


@pytest.fixture
def store(contract_store: Store) -> Store:
    """Every test here that takes `store` runs on SQLite and on PostgreSQL."""
    return contract_store


@pytest.fixture
def defaults(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "default_quota_credits": 5,
            "default_quota_period": Period.WEEK,
            "user_max_concurrent": 2,
            "guild_max_concurrent": 10,
            "monthly_budget_usd": 20.0,
        }
    )


# resolve ------------------------------------------------------------------------------------------------
def test_a_server_that_set_nothing_gets_every_default(defaults: Settings) -> None:
    rules = resolve(defaults, GuildSettings(1))
    assert (rules.credits, rules.period, rules.user_max_concurrent, rules.guild_max_concurrent) == (
        5,
        Period.WEEK,
        2,
        10,
    )
    assert rules.budget_usd == 20.0
    assert rules.credits_default
    assert rules.budget_default
    assert resolve(defaults) == rules  # outside a server: the defaults too


def test_each_value_a_server_set_wins_over_the_default(defaults: Settings) -> None:
    guild = GuildSettings(
        1,
        quota_credits=9,
        quota_period=Period.MONTH,
        budget_usd=3.5,
        user_max_concurrent=4,
        guild_max_concurrent=30,
    )
    rules = guild.resolved(defaults)
    assert (rules.credits, rules.period, rules.user_max_concurrent, rules.guild_max_concurrent) == (
        9,
        Period.MONTH,
        4,
        30,
    )
    assert rules.budget_usd == 3.5
    assert not rules.credits_default
    assert not rules.budget_default


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("quota_credits", 7, "credits", 7),
        ("quota_period", Period.DAY, "period", Period.DAY),
        ("budget_usd", 1.25, "budget_usd", 1.25),
        ("user_max_concurrent", 3, "user_max_concurrent", 3),
        ("guild_max_concurrent", 15, "guild_max_concurrent", 15),
    ],
)
def test_one_setting_set_leaves_the_others_on_their_defaults(
    defaults: Settings, field: str, value: object, attribute: str, expected: object
) -> None:
    rules = resolve(defaults, replace(GuildSettings(1), **{field: value}))
    assert getattr(rules, attribute) == expected
    untouched = resolve(defaults, GuildSettings(1))
    for name in ("credits", "period", "budget_usd", "user_max_concurrent", "guild_max_concurrent"):
        if name != attribute:
            assert getattr(rules, name) == getattr(untouched, name)


def test_zero_credits_blocks_while_unset_credits_fall_back(defaults: Settings) -> None:
    blocked = resolve(defaults, GuildSettings(1, quota_credits=0))
    assert (blocked.credits, blocked.limit, blocked.credits_default) == (0, 0, False)
    unset = resolve(defaults, GuildSettings(1, quota_credits=None))
    assert (unset.credits, unset.limit) == (5, 5)
    member = resolve_member(defaults, PolicySources(GuildSettings(1, quota_credits=0), None, {}))
    assert member.limit == 0


def test_unlimited_credits_have_no_limit(defaults: Settings) -> None:
    rules = resolve(defaults, GuildSettings(1, quota_credits=UNLIMITED))
    assert rules.credits == UNLIMITED
    assert rules.limit is None
    everyone = defaults.model_copy(update={"default_quota_credits": UNLIMITED})
    assert resolve(everyone, GuildSettings(1)).limit is None


def test_no_budget_anywhere_means_none_and_the_servers_own_beats_none(defaults: Settings) -> None:
    none = defaults.model_copy(update={"monthly_budget_usd": None})
    rules = resolve(none, GuildSettings(1))
    assert (rules.budget_usd, rules.budget_default) == (None, False)
    own = resolve(none, GuildSettings(1, budget_usd=2.0))
    assert (own.budget_usd, own.budget_default) == (2.0, False)


def test_a_member_override_beats_roles_and_its_cap_beats_the_servers(defaults: Settings) -> None:
    guild = GuildSettings(1, quota_credits=3, user_max_concurrent=4)
    sources = PolicySources(guild, MemberOverride(7, credits=UNLIMITED, max_concurrent=6), {55: 20})
    policy = resolve_member(defaults, sources)
    assert (policy.limit, policy.user_max_concurrent, policy.period) == (None, 6, Period.WEEK)
    no_cap = resolve_member(defaults, PolicySources(guild, MemberOverride(7, blocked=True), {}))
    assert (no_cap.limit, no_cap.user_max_concurrent, no_cap.blocked) == (3, 4, True)


# What the store builds ---------------------------------------------------------------------------------
async def test_a_server_without_a_row_reads_as_nothing_set(store: Store) -> None:
    assert await store.guild_settings(10) == GuildSettings(10)


async def test_the_store_builds_typed_settings_from_every_column(store: Store) -> None:
    await store.set_guild_settings(
        10,
        99,
        quota_credits=0,
        quota_period="month",
        budget_usd=12.5,
        user_max_concurrent=3,
        guild_max_concurrent=40,
        mod_role_id=2**62,
        modlog_channel_id=2**61,
        spoiler=True,
        allowed_channels=[5, 6],
        blocklist=["nude"],
        allowed_models='["hailuo-02"]',
    )
    await quota.set_cost(store, 10, 99, "768P/6", 4)
    got = await store.guild_settings(10)
    assert (got.quota_credits, got.quota_period, got.budget_usd) == (0, Period.MONTH, 12.5)
    assert (got.user_max_concurrent, got.guild_max_concurrent) == (3, 40)
    assert (got.mod_role_id, got.modlog_channel_id, got.spoiler) == (2**62, 2**61, True)
    assert (got.allowed_channels, got.blocklist) == ((5, 6), ("nude",))
    assert got.allowed_models == ("hailuo-02",)
    assert got.credit_costs == {"768P/6": 4}
    assert got.updated_by == 99
    assert got.updated_at is not None


async def test_the_store_builds_the_member_policy_it_admits_with(store: Store) -> None:
    reset = utcnow().replace(microsecond=0)
    await store.set_guild_settings(10, 99, quota_credits=2)
    await store.set_role_limit(10, 55, 8, 99)
    await store.set_role_limit(10, 56, 30, 99)  # a role the member does not have
    await store.set_member_policy(10, 7, 99, max_concurrent=3, usage_reset_at=reset)
    sources = await store.policy(10, 7, (55,))
    assert sources.guild is not None
    assert sources.guild.quota_credits == 2
    assert sources.member == MemberOverride(7, None, False, 3, reset)
    assert dict(sources.roles) == {55: 8}
    assert await store.policy(None, 7) == PolicySources(None, None, {})
