"""Quota policy: periods, limits, roles, grants, budgets, caps — and no overspend under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.core import quota
from bot.core.models import ChargeState, Job, JobRequest, JobState, utcnow
from bot.core.policy import (
    GuildSettings,
    MemberOverride,
    MemberPolicy,
    PolicySources,
    UsageSnapshot,
    resolve_member,
)
from bot.core.settings import Period, Settings
from bot.core.store import Store

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def store(contract_store: Store) -> Store:
    """Every test here that takes `store` runs on SQLite and on PostgreSQL."""
    return contract_store


async def ask(
    store: Store,
    settings: Settings,
    user: int = 1,
    *,
    duration: int = 6,
    resolution: str = "768P",
    roles: tuple[int, ...] = (),
    now: datetime | None = None,
) -> tuple[Job | None, quota.Decision]:
    request = JobRequest(
        guild_id=10,
        channel_id=20,
        user_id=user,
        prompt="p",
        duration=duration,
        resolution=resolution,
        role_ids=roles,
    )
    return await quota.admit(store, settings, request, now=now)


def test_period_windows_are_fixed_utc() -> None:
    assert quota.period_window(Period.DAY, NOW) == (
        datetime(2026, 11, 25, tzinfo=UTC),
        datetime(2026, 11, 26, tzinfo=UTC),
    )
    assert quota.period_window(Period.WEEK, NOW) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert quota.period_window(Period.MONTH, NOW) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    dec = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert quota.period_window(Period.MONTH, dec)[1] == datetime(2027, 1, 1, tzinfo=UTC)


def test_best_role_wins_and_member_override_beats_roles(settings: Settings) -> None:
    guild = GuildSettings(10, quota_credits=3)
    rows = PolicySources(guild=guild, member=None, roles={1: 10, 2: 20})
    assert resolve_member(settings, rows).limit == 20
    rows = PolicySources(guild=guild, member=None, roles={1: 10, 2: -1})
    assert resolve_member(settings, rows).limit is None  # unlimited
    rows = PolicySources(guild=guild, member=MemberOverride(1, credits=1), roles={2: 20})
    assert resolve_member(settings, rows).limit == 1
    assert resolve_member(settings, PolicySources(None, None, {})).limit == settings.default_quota_credits


def test_refusals_say_what_and_when() -> None:
    policy = MemberPolicy(limit=5, period=Period.DAY, blocked=False, user_max_concurrent=2,
                          guild_max_concurrent=10, budget_usd=1.0)  # fmt: skip
    spent = UsageSnapshot(used_credits=5, granted_credits=0, user_active=0, guild_active=0, guild_month_usd=0)
    d = quota.decide(policy, spent, 1, 0.28, NOW)
    assert not d.ok
    assert d.refusal == quota.Refusal.QUOTA
    assert "0 of 5 left today" in str(d.message)  # remaining credits, one way everywhere
    assert "reset <t:" in str(d.message)
    assert d.retry_at == datetime(2026, 11, 26, tzinfo=UTC)
    one_left = UsageSnapshot(4, 0, 0, 0, 0)
    d = quota.decide(policy, one_left, 2, 0.56, NOW)
    assert not d.ok
    assert "needs 2 credits" in str(d.message)
    busy = UsageSnapshot(0, 0, 2, 2, 0)
    assert quota.decide(policy, busy, 1, 0.28, NOW).refusal == quota.Refusal.USER_BUSY
    broke = UsageSnapshot(0, 0, 0, 0, 0.9)
    d = quota.decide(policy, broke, 1, 0.28, NOW)
    assert d.refusal == quota.Refusal.BUDGET
    assert "$1.00" in str(d.message)


async def test_twenty_concurrent_requests_against_five_credits_accept_exactly_five(
    store: Store, settings: Settings
) -> None:
    settings.user_max_concurrent = 100
    settings.guild_max_concurrent = 100
    results = await asyncio.gather(*(ask(store, settings) for _ in range(20)))
    accepted = [job for job, _ in results if job is not None]
    refused = [d for job, d in results if job is None]
    assert len(accepted) == 5
    assert len(refused) == 15
    assert all(d.refusal == quota.Refusal.QUOTA for d in refused)
    assert (await store.ledger_totals())["reserve"] == 5


async def test_refund_gives_credits_back_and_grant_adds(store: Store, settings: Settings) -> None:
    settings.user_max_concurrent = 100
    jobs = [(await ask(store, settings))[0] for _ in range(5)]
    assert all(jobs)
    job, decision = await ask(store, settings)
    assert job is None
    await store.transition(
        jobs[0].id, JobState.FAILED, expect=(JobState.ACCEPTED,), charge=ChargeState.REFUNDED
    )
    job, decision = await ask(store, settings)
    assert job is not None, str(decision.message)
    assert (await ask(store, settings))[0] is None
    await store.grant(10, 1, 2, actor_id=99)
    assert (await ask(store, settings))[0] is not None
    usage = await quota.member_usage(store, settings, 10, 1)
    assert usage.allowance == 7
    assert usage.left == 1
    assert str(usage.summary()).startswith("1 of 7 left today · resets <t:")


async def test_credits_follow_duration_and_resolution(store: Store, settings: Settings) -> None:
    job, _ = await ask(store, settings, duration=10)
    assert job.credits == 2
    assert job.cost_usd == pytest.approx(0.56)
    job, _ = await ask(store, settings, user=2, resolution="1080P")
    assert job.credits == 2


async def test_next_period_starts_fresh(store: Store, settings: Settings) -> None:
    settings.user_max_concurrent = 100
    for _ in range(5):
        assert (await ask(store, settings))[0] is not None
    assert (await ask(store, settings))[0] is None
    tomorrow = quota.period_window(Period.DAY, utcnow())[1]
    assert (await ask(store, settings, now=tomorrow))[0] is not None


async def test_role_tier_budget_block_and_concurrency(store: Store, settings: Settings) -> None:
    await store.set_role_limit(10, 555, 8, actor_id=1)
    settings.user_max_concurrent = 100
    for _ in range(8):
        assert (await ask(store, settings, roles=(555,)))[0] is not None
    assert (await ask(store, settings, roles=(555,)))[0] is None
    await store.set_guild_settings(10, actor_id=1, budget_usd=0.5)
    job, d = await ask(store, settings, user=3)
    assert job is None
    assert d.refusal == quota.Refusal.BUDGET
    await store.set_guild_settings(10, actor_id=1, budget_usd=None)
    await store.set_member_policy(10, 4, actor_id=1, blocked=True)
    assert (await ask(store, settings, user=4))[1].refusal == quota.Refusal.BLOCKED
    settings.user_max_concurrent = 2
    assert (await ask(store, settings, user=5))[0] is not None
    assert (await ask(store, settings, user=5))[0] is not None
    assert (await ask(store, settings, user=5))[1].refusal == quota.Refusal.USER_BUSY


async def test_the_member_concurrent_cap_counts_only_jobs_in_the_same_server(
    store: Store, settings: Settings
) -> None:
    """Two running videos in one server do not stop the same member from starting one in another server."""
    settings.user_max_concurrent = 2

    def elsewhere(guild_id: int) -> JobRequest:
        return JobRequest(guild_id=guild_id, channel_id=20, user_id=1, prompt="p")

    for _ in range(2):
        job, decision = await quota.admit(store, settings, elsewhere(99))
        assert job is not None, str(decision.message)
    job, decision = await quota.admit(store, settings, elsewhere(99))
    assert job is None  # the cap holds inside the server
    job, decision = await ask(store, settings)  # guild 10: none running here
    assert job is not None, str(decision.message)


async def test_two_moderators_setting_costs_at_once_both_count(store: Store) -> None:
    await asyncio.gather(
        quota.set_cost(store, 10, 1, "768P/6", 3),
        quota.set_cost(store, 10, 2, "1080P/6", 7),
        quota.set_cost(store, 10, 3, "768P/10", 0),
    )
    row = await store.guild_settings(10)
    assert row.credit_costs == {"768P/6": 3, "1080P/6": 7, "768P/10": 0}


async def test_two_moderators_changing_different_defaults_at_once_both_count(store: Store) -> None:
    first, second = await asyncio.gather(
        quota.set_defaults(store, 10, 1, {"quota_credits": 40}),
        quota.set_defaults(store, 10, 2, {"user_max_concurrent": 3}),
    )
    row = await store.guild_settings(10)
    assert (row.quota_credits, row.user_max_concurrent) == (40, 3)
    assert first.quota_credits == 40
    assert second.user_max_concurrent == 3
