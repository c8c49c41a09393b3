"""Reports and the moderator policy in the store: real SQLite, jobs moved through real transitions."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core import quota, reports
from bot.core.models import ChargeState, Job, JobRequest, JobState, utcnow
from bot.core.policy import RoleLimit
from bot.core.report_rows import REPORT_COLUMNS, MemberTotals, ReportRow
from bot.core.settings import Period, Settings
from bot.core.store import Store
from bot.discord_side.report_embed import report_embed

GUILD = 10
TOKEN = "aW50ZXJhY3Rpb246secret-interaction-token"
CDN = "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=abc&hm=signed"
TRICKY = 'A "quoted" prompt, with commas,\nnew lines and emoji 🎞️ — and <@123>'


@pytest.fixture
def store(contract_store: Store) -> Store:
    """Every test here that takes `store` runs on SQLite and on PostgreSQL."""
    return contract_store


async def new_job(
    store: Store,
    settings: Settings,
    user: int = 1,
    *,
    channel: int = 20,
    prompt: str = "a cat",
    duration: int = 6,
    now: datetime | None = None,
) -> Job:
    request = JobRequest(
        guild_id=GUILD, channel_id=channel, user_id=user, user_name=f"user{user}", prompt=prompt,
        duration=duration, image_url=CDN, image_name="cat.png", interaction_token=TOKEN, application_id=5,
    )  # fmt: skip
    job, decision = await quota.admit(store, settings, request, now=now)
    assert job is not None, str(decision.message)
    return job


async def walk(store: Store, job: Job, end: JobState) -> Job:
    """Move a job along the real state machine to `end`, settling its credits as the runner does."""

    async def t(job_id: int, state: JobState, **fields: Any) -> Job:
        now = await store.get_job(job_id)
        assert now is not None
        return await store.transition(job_id, state, expect=(now.state,), **fields)

    if end == JobState.CANCELLED:
        return await t(job.id, JobState.CANCELLED, charge=ChargeState.REFUNDED)
    await t(job.id, JobState.QUEUED)
    if end == JobState.QUEUED:
        return await store.get_job(job.id)  # type: ignore[return-value]
    if end == JobState.FAILED:
        return await t(job.id, JobState.FAILED, charge=ChargeState.REFUNDED, error="The service said no.")
    await t(job.id, JobState.SUBMITTING)
    await t(job.id, JobState.SUBMITTED, task_id=f"task-{job.id}", submitted_at=utcnow())
    await t(job.id, JobState.PROCESSING)
    await t(job.id, JobState.DOWNLOADING, finished_at=utcnow())
    await t(job.id, JobState.DELIVERING, charge=ChargeState.CHARGED, video_path=f"/tmp/{job.id}.mp4")
    if end == JobState.UNDELIVERED:
        return await t(job.id, JobState.UNDELIVERED, error="Nowhere to post it.")
    return await t(job.id, JobState.DELIVERED, delivered_at=utcnow(), delivered_via="channel",
                   result_channel_id=job.channel_id, result_message_id=900 + job.id)  # fmt: skip


async def five_jobs(store: Store, settings: Settings) -> list[Job]:
    return [
        await walk(store, await new_job(store, settings, 1, prompt=TRICKY), JobState.DELIVERED),
        await walk(store, await new_job(store, settings, 2, duration=10, channel=21), JobState.UNDELIVERED),
        await walk(store, await new_job(store, settings, 1, prompt="=HYPERLINK(1)"), JobState.FAILED),
        await walk(store, await new_job(store, settings, 3), JobState.CANCELLED),
        await walk(store, await new_job(store, settings, 3), JobState.QUEUED),
    ]


async def test_report_totals_members_channels_and_undelivered(store: Store, relaxed: Settings) -> None:
    jobs = await five_jobs(store, relaxed)
    rows = await store.report_rows(GUILD)
    assert [r.id for r in rows] == [j.id for j in jobs]
    assert all(
        not hasattr(r, "interaction_token") and not hasattr(r, "image_url") and not hasattr(r, "video_path")
        for r in rows
    )
    report = reports.summarise(rows, "all", None, await store.undelivered_jobs(GUILD))
    t = report.totals
    assert (t.jobs, t.succeeded, t.failed, t.cancelled, t.undelivered, t.active) == (5, 2, 1, 1, 1, 1)
    assert (t.credits, t.seconds) == (3, 16)
    assert t.usd == pytest.approx(0.84)
    assert t.reserved_usd == pytest.approx(0.28)
    assert [uid for uid, _, _ in report.members] == [2, 1, 3]  # most expensive first
    assert report.members[1][1] == "user1"
    assert [(cid, tally.jobs) for cid, tally in report.channels] == [(20, 4), (21, 1)]
    assert [r.id for r in report.undelivered] == [jobs[1].id]

    embed = report_embed(report)
    fields = {f.name: f.value for f in embed.fields}
    assert "5 videos · 2 made · 1 failed · 1 cancelled" in fields["Totals"]
    assert "$0.84" in fields["Totals"]
    assert "1 in progress ($0.28 reserved)" in fields["Totals"]
    assert fields["Top members"].startswith("1. <@2> — 1 video · 1 made · $0.56")
    assert any(name.startswith("Undelivered") and f"#{jobs[1].id} by <@2>" in v for name, v in fields.items())


async def test_long_reports_stay_inside_discord_limits(store: Store, relaxed: Settings) -> None:
    for user in range(40):
        await new_job(store, relaxed, user, channel=1000 + user)
    report = reports.summarise(await store.report_rows(GUILD), "day", utcnow(), [])
    embed = report_embed(report)
    assert all(len(f.value) <= 1024 for f in embed.fields)
    assert len(embed) <= 6000
    values = {f.name: f.value for f in embed.fields}
    assert values["Top members"].endswith("…and 35 more")
    assert "more" in values["By channel"]


async def test_csv_has_one_spreadsheet_safe_row_per_job(store: Store, relaxed: Settings) -> None:
    jobs = await five_jobs(store, relaxed)
    data = reports.csv_bytes(
        await store.report_rows(GUILD), await store.report_events(GUILD), {20: "general"}.get
    )
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(table[0]) == reports.CSV_COLUMNS
    assert len(table) == len(jobs)
    delivered, undelivered, failed, cancelled, queued = table
    assert delivered["prompt"] == TRICKY  # quotes, commas, new lines and emoji survive the round trip
    assert delivered["channel"] == "#general"
    assert undelivered["channel"] == ""
    assert delivered["result_link"] == f"https://discord.com/channels/{GUILD}/20/{900 + jobs[0].id}"
    assert delivered["timeline"].startswith("accepted +0.0s > queued +")
    assert [step.split(" +")[0] for step in delivered["timeline"].split(" > ")] == [
        "accepted", "queued", "submitting", "submitted", "processing", "downloading", "delivering",
        "delivered",
    ]  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", delivered["created_utc"])
    assert delivered["task_id"] == f"task-{jobs[0].id}"
    assert failed["prompt"] == "'=HYPERLINK(1)"
    assert [r["outcome"] for r in table] == ["delivered", "undelivered", "failed", "cancelled", "in progress"]
    assert [r["charge"] for r in table] == ["charged", "charged", "refunded", "refunded", "reserved"]
    assert undelivered["cost_usd"] == "0.56"
    assert undelivered["duration_s"] == "10"
    assert queued["seconds_taken"] == ""
    assert cancelled["from_image"] == "yes"
    assert TOKEN not in text
    assert "cdn.discordapp.com" not in text
    assert "/tmp/" not in text


async def test_periods_select_jobs_by_their_utc_window(store: Store, relaxed: Settings) -> None:
    now = utcnow()
    old = await new_job(store, relaxed, 1, now=now - timedelta(days=40))
    recent = await new_job(store, relaxed, 1, now=now)
    assert reports.period_since("all", now) is None
    assert reports.period_since("day", now) == quota.period_window(Period.DAY, now)[0]
    month = [r.id for r in await store.report_rows(GUILD, reports.period_since("month", now))]
    assert month == [recent.id]
    assert [r.id for r in await store.report_rows(GUILD)] == [old.id, recent.id]
    assert set(await store.report_events(GUILD, reports.period_since("day", now))) == {recent.id}


async def test_member_totals_active_jobs_and_budget(store: Store, relaxed: Settings) -> None:
    jobs = await five_jobs(store, relaxed)
    assert await store.member_totals(GUILD, 1) == MemberTotals(
        jobs=2, succeeded=1, failed=1, credits=1, usd=pytest.approx(0.28), seconds=6
    )
    assert [j.id for j in await store.active_jobs(GUILD, 3)] == [jobs[4].id]
    assert await quota.budget_status(store, GUILD) is None
    await store.set_guild_settings(GUILD, 99, budget_usd=2.0)
    status = await quota.budget_status(store, GUILD)
    assert status is not None
    assert status.spent_usd == pytest.approx(0.28 + 0.56 + 0.28)  # charged + still reserved
    assert status.left_usd == pytest.approx(0.88)
    assert str(status.summary()).startswith("$0.88 of $2.00 left this month · renews <t:")


async def test_reset_clears_member_usage_but_not_the_budget(store: Store, settings: Settings) -> None:
    settings.default_quota_credits = 2
    settings.user_max_concurrent = 100
    for _ in range(2):
        await walk(store, await new_job(store, settings), JobState.DELIVERED)
    await store.grant(GUILD, 1, 1, actor_id=99)
    await walk(store, await new_job(store, settings), JobState.DELIVERED)  # the granted credit
    refused, decision = await quota.admit(store, settings, JobRequest(GUILD, 20, 1, "p"))
    assert refused is None
    assert decision.refusal == quota.Refusal.QUOTA

    await store.set_member_policy(GUILD, 1, 99, usage_reset_at=utcnow())
    usage = await quota.member_usage(store, settings, GUILD, 1)
    assert (usage.usage.used_credits, usage.allowance, usage.left) == (0, 2, 2)  # the grant was used up too
    assert str(usage.summary()).startswith("2 of 2 left today")
    assert await new_job(store, settings) is not None
    assert await store.guild_spent(GUILD, quota.period_window(Period.MONTH, utcnow())[0]) == pytest.approx(
        4 * 0.28
    )  # the money was still spent
    assert (await store.member_totals(GUILD, 1)).succeeded == 3


async def test_member_cap_and_server_credit_costs(store: Store, settings: Settings) -> None:
    await store.set_member_policy(GUILD, 1, 99, max_concurrent=1)
    await new_job(store, settings, 1)
    job, decision = await quota.admit(store, settings, JobRequest(GUILD, 20, 1, "p"))
    assert job is None
    assert decision.refusal == quota.Refusal.USER_BUSY
    assert "the limit is 1" in str(decision.message)

    await store.set_guild_settings(GUILD, 99, credit_table=json.dumps({"768P/6": 3, "768P/10": 0}))
    assert (await new_job(store, settings, 2)).credits == 3
    assert (await new_job(store, settings, 3, duration=10)).credits == 0
    table = quota.credit_table(settings, await store.guild_settings(GUILD))
    assert table == {("768P", 6): 3, ("768P", 10): 0, ("1080P", 6): 2}
    job, _ = await quota.admit(
        store, settings, JobRequest(None, None, 4, "p", operator=True)
    )  # operator jobs ignore server tables
    assert job is not None
    assert job.credits == 1


async def test_policy_overview_lists_tiers_overrides_and_who_changed_what(
    store: Store, settings: Settings
) -> None:
    await store.set_role_limit(GUILD, 555, 20, actor_id=7)
    await store.set_member_policy(GUILD, 1, 8, blocked=True)
    await store.set_member_policy(GUILD, 2, 8, credits=-1)
    await store.set_member_policy(GUILD, 3, 8, usage_reset_at=utcnow())  # not an override: not listed
    overview = await store.policy_overview(GUILD)
    assert overview.roles == (RoleLimit(555, 20),)
    assert [(m.user_id, m.blocked, m.credits) for m in overview.members] == [
        (1, True, None),
        (2, False, -1),
    ]
    assert [c.actor_id for c in overview.changes] == [8, 8, 8, 7]
    assert json.loads(overview.changes[-1].change) == {"role": 555, "credits": 20}


def test_tally_counts_a_made_but_undelivered_video_as_succeeded() -> None:
    at = datetime(2026, 11, 25, tzinfo=UTC).isoformat()
    columns = dict.fromkeys(REPORT_COLUMNS)
    row = ReportRow.from_row({**columns, "id": 1, "state": "undelivered", "charge_state": "charged",
                              "credits": 2, "duration": 10, "cost_usd": 0.56, "user_id": 1, "channel_id": 2,
                              "created_at": at, "entry": "slash", "model": "hailuo-02"})  # fmt: skip
    tally = reports.Tally()
    tally.add(row)
    assert (tally.succeeded, tally.undelivered, tally.seconds, tally.credits) == (1, 1, 10, 2)
