"""MONTHLY_BUDGET_USD is the monthly budget of every server that has not set its own: it refuses a video that
would pass it, a server's own /quota budget wins over it, and removing the server's own brings it back."""

from __future__ import annotations

from bot.core import quota
from bot.core.models import JobRequest
from bot.core.settings import Settings
from bot.core.store import Store

GUILD = 10


def request(user: int) -> JobRequest:
    return JobRequest(guild_id=GUILD, channel_id=5, user_id=user, prompt="a boat")


async def test_the_default_budget_refuses_what_would_pass_it(store: Store, settings: Settings) -> None:
    settings.monthly_budget_usd = 0.60  # two 6 s 768P videos ($0.28 each) fit, a third does not
    for user in (1, 2):
        job, decision = await quota.admit(store, settings, request(user))
        assert job is not None, str(decision.message)
    job, decision = await quota.admit(store, settings, request(3))
    assert job is None
    assert decision.refusal == quota.Refusal.BUDGET
    assert "monthly video budget ($0.60)" in str(decision.message)
    status = await quota.budget_status(store, GUILD, settings=settings)
    assert status is not None
    assert status.default
    assert "(the bot's default)" in str(status.summary())


async def test_a_servers_own_budget_wins_and_removing_it_restores_the_default(
    store: Store, settings: Settings
) -> None:
    settings.monthly_budget_usd = 0.30
    await store.set_guild_settings(GUILD, 1, budget_usd=5.0)
    for user in (1, 2, 3):
        job, decision = await quota.admit(store, settings, request(user))
        assert job is not None, str(decision.message)
    status = await quota.budget_status(store, GUILD, settings=settings)
    assert status is not None
    assert (status.budget_usd, status.default) == (5.0, False)
    await store.set_guild_settings(GUILD, 1, budget_usd=None)
    status = await quota.budget_status(store, GUILD, settings=settings)
    assert status is not None
    assert (status.budget_usd, status.default) == (0.30, True)


async def test_without_a_default_a_server_has_no_budget(store: Store, settings: Settings) -> None:
    assert settings.monthly_budget_usd is None
    assert await quota.budget_status(store, GUILD, settings=settings) is None
