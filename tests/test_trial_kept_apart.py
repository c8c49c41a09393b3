"""Trial mode (NOVITA_MODE=simulate) is kept apart: simulated jobs never count against a live bot's quotas,
budgets or cost figures, reports show them apart, and a live runner never sends one to Novita."""

from __future__ import annotations

from bot.core import quota, reports
from bot.core.jobs import JobRunner
from bot.core.models import ChargeState, Job, JobRequest, JobState
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store
from bot.discord_side.report_embed import report_embed
from tests.conftest import Env
from tests.support.recording_reporter import RecordingReporter

GUILD, USER = 10, 1


async def made_video(store: Store, settings: Settings, *, simulated: bool) -> Job:
    """A job admitted, made and charged (1 credit, $0.28), simulated or real."""
    request = JobRequest(guild_id=GUILD, channel_id=5, user_id=USER, prompt="a boat", simulated=simulated)
    job, decision = await quota.admit(store, settings, request)
    assert job is not None, str(decision.message)
    path = [
        (JobState.QUEUED, JobState.ACCEPTED),
        (JobState.SUBMITTING, JobState.QUEUED),
        (JobState.SUBMITTED, JobState.SUBMITTING),
        (JobState.DOWNLOADING, JobState.SUBMITTED),
    ]
    for new, old in path:
        job = await store.transition(job.id, new, expect=(old,))
    job = await store.transition(
        job.id, JobState.DELIVERING, expect=(JobState.DOWNLOADING,), charge=ChargeState.CHARGED
    )
    return await store.transition(job.id, JobState.DELIVERED, expect=(JobState.DELIVERING,))


async def test_simulated_videos_do_not_count_against_a_live_quota_or_budget(
    store: Store, settings: Settings
) -> None:
    await made_video(store, settings, simulated=True)
    await made_video(store, settings, simulated=True)
    live = await quota.member_usage(store, settings, GUILD, USER)
    assert live.usage.used_credits == 0
    assert live.left == settings.default_quota_credits
    assert live.usage.guild_month_usd == 0
    await store.set_guild_settings(GUILD, None, budget_usd=1.0)
    budget = await quota.budget_status(store, GUILD, settings=settings)
    assert budget is not None
    assert budget.spent_usd == 0
    totals = await store.member_totals(GUILD, USER)
    assert (totals.jobs, totals.credits, totals.usd) == (0, 0, 0)

    await made_video(store, settings, simulated=False)
    live = await quota.member_usage(store, settings, GUILD, USER)
    assert live.usage.used_credits == 1
    assert live.usage.guild_month_usd == 0.28


async def test_a_trial_store_counts_only_simulated_videos(store: Store, settings: Settings) -> None:
    await made_video(store, settings, simulated=False)
    trial = SqliteStore(settings.database_path, trial=True)
    await trial.open()
    try:
        await made_video(trial, settings, simulated=True)
        await made_video(trial, settings, simulated=True)
        usage = await quota.member_usage(trial, settings, GUILD, USER)
        assert usage.usage.used_credits == 2  # the trial shows quotas working, on its own count
        assert usage.usage.guild_month_usd == 0.56
    finally:
        await trial.close()


async def test_reports_show_simulated_jobs_apart_and_never_in_the_cost(
    store: Store, settings: Settings
) -> None:
    await made_video(store, settings, simulated=True)
    await made_video(store, settings, simulated=False)
    rows = await store.report_rows(GUILD)
    report = reports.summarise(rows, "all", None)
    assert (report.totals.jobs, report.totals.usd) == (1, 0.28)
    assert [uid for uid, _name, _tally in report.members] == [USER]
    assert report.members[0][2].jobs == 1
    assert report.simulated.jobs == 1
    embed = report_embed(report).to_dict()
    simulated = [f for f in embed["fields"] if f["name"].startswith("Simulated in trial mode")]
    assert len(simulated) == 1
    assert "not billed" in simulated[0]["name"]
    assert "$0.28" in next(f["value"] for f in embed["fields"] if f["name"] == "Totals")
    table = reports.csv_bytes(rows, {}).decode("utf-8-sig").splitlines()
    assert table[0].endswith(",simulated")
    assert [line.rsplit(",", 1)[1] for line in table[1:]] == ["yes", "no"]


async def test_a_live_runner_ends_a_leftover_simulated_job_without_sending_it(env: Env) -> None:
    await env.runner.stop(grace=0)  # the process that made it in trial mode is gone
    request = JobRequest(guild_id=GUILD, channel_id=5, user_id=USER, prompt="a boat", simulated=True)
    job, _ = await quota.admit(env.store, env.settings, request)
    assert job is not None
    await env.store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
    reporter = RecordingReporter()
    runner = JobRunner(
        store=env.store, settings=env.settings, novita=env.runner.novita, http=env.http, reporter=reporter
    )
    await runner.start()
    try:
        ended = await runner.wait_settled(job.id, 10)
    finally:
        await runner.stop(grace=0)
    assert ended.state == JobState.FAILED
    assert ended.charge_state == ChargeState.REFUNDED
    assert "left trial mode" in (str(ended.error_text) or "")
    assert env.fake.submits == []  # Novita was never asked, so never paid


async def test_a_trial_runner_leaves_a_live_job_for_live_mode(env: Env) -> None:
    await env.runner.stop(grace=0)
    request = JobRequest(guild_id=GUILD, channel_id=5, user_id=USER, prompt="a boat")
    job, _ = await quota.admit(env.store, env.settings, request)
    assert job is not None
    await env.store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
    trial = env.settings.model_copy(update={"novita_mode": "simulate"})
    runner = JobRunner(store=env.store, settings=trial, novita=env.runner.novita, http=env.http)
    await runner.start()
    driven = job.id in runner._tasks  # decided in start(): a driven job would get its task there
    await runner.stop(grace=0)
    assert not driven
    still = await env.store.get_job(job.id)
    assert still is not None
    assert (still.state, still.charge_state) == (JobState.QUEUED, ChargeState.RESERVED)  # resumes when live
    assert env.fake.submits == []
