"""Every kind of message a member or moderator sees, built by the bot's real code for sample jobs.

Shared by scripts/render_examples.py (docs/examples.md as text) and scripts/render_examples_pictures.py
(the same messages drawn as Discord shows them). Each message is the payload the bot sends: `content`,
`embeds` (`Embed.to_dict()`), `components` (the real views' `to_components()`), attachment names, and
whether it is ephemeral. The figures that need the store (/usage, /about, /server-usage) come from a real
SQLite store in a temporary folder, filled through the real admission and state transitions, with the
clock fixed so the pages never change unless the code does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core import quota, reports, spend_chart  # noqa: E402 - after the path is set
from bot.core.models import ChargeState, Job, JobRequest, JobState  # noqa: E402
from bot.core.policy import MemberPolicy, UsageSnapshot  # noqa: E402
from bot.core.settings import Period, Settings, load_settings  # noqa: E402
from bot.core.store import SqliteStore, Store  # noqa: E402
from bot.discord_side import cards  # noqa: E402
from bot.discord_side.job_actions import card_view, result_view  # noqa: E402
from bot.discord_side.report_embed import report_embed  # noqa: E402

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
GUILD = 1
CHANNEL = 2
NAMES = {1111: "Alice", 2222: "Bruno", 3333: "Chen", 4444: "Dana", 5555: "Eli", 6666: "Fatima", 7777: "Goro"}
CHANNELS = {CHANNEL: "general", 3: "videos"}
CHART_FILE = "hailuo-usage-month-20260115.png"


@dataclass(frozen=True)
class Example:
    slug: str  # file name of its picture
    title: str
    note: str
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    ephemeral: bool = False
    images: dict[str, bytes] = field(default_factory=dict)  # attachment name -> bytes (the chart)


def sample_job(**changes: object) -> Job:
    created = NOW - timedelta(minutes=2)
    job = Job(
        id=17, state=JobState.QUEUED, guild_id=GUILD, channel_id=CHANNEL, user_id=1111,
        prompt="a paper boat on a stormy sea at dusk, waves crashing, cinematic lighting",
        duration=6, resolution="768P", prompt_expansion=True, credits=1, cost_usd=0.28,
        charge_state=ChargeState.RESERVED, created_at=created, updated_at=created, camera="Push in",
    )  # fmt: skip
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def card(slug: str, title: str, note: str, embed: Any, **kw: Any) -> Example:
    return Example(slug, title, note, embeds=[embed.to_dict()], **kw)


@contextlib.contextmanager
def fixed_clock(now: datetime) -> Iterator[None]:
    """The clock is the one edge the examples fix: the store's, the quota's and the models' `utcnow`."""
    with (
        mock.patch("bot.core.store.jobs.utcnow", return_value=now),
        mock.patch("bot.core.quota.utcnow", return_value=now),
        mock.patch("bot.core.models.utcnow", return_value=now),
    ):
        yield


def sample_settings(folder: Path) -> Settings:
    return load_settings(
        discord_token="example-token",  # noqa: S106 - never used: nothing connects
        novita_api_key="example-key",
        database_path=folder / "examples.db",
        media_dir=folder / "media",
        monthly_budget_usd=None,
        default_quota_credits=5,
        user_max_concurrent=100,
        guild_max_concurrent=100,
    )


async def made_video(
    store: Store,
    settings: Settings,
    user: int,
    when: datetime,
    *,
    duration: int = 6,
    fail: bool = False,
    channel: int = CHANNEL,
) -> None:
    """One video through the real admission and the runner's transitions, at `when`."""
    with fixed_clock(when):
        request = JobRequest(
            guild_id=GUILD, channel_id=channel, user_id=user, user_name=NAMES[user].lower(), prompt="a cat",
            duration=duration,
        )  # fmt: skip
        job, decision = await quota.admit(store, settings, request, now=when)
        assert job is not None, str(decision.message)
        steps: list[tuple[JobState, dict[str, Any]]] = [(JobState.QUEUED, {})]
        if fail:
            steps.append((JobState.FAILED, {"charge": ChargeState.REFUNDED, "error": "Novita said no."}))
        else:
            steps += [
                (JobState.SUBMITTING, {}),
                (JobState.SUBMITTED, {"task_id": f"task-{job.id}", "submitted_at": when}),
                (JobState.PROCESSING, {}),
                (JobState.DOWNLOADING, {"finished_at": when}),
                (JobState.DELIVERING, {"charge": ChargeState.CHARGED}),
                (JobState.DELIVERED, {"delivered_at": when, "delivered_via": "channel"}),
            ]
        for state, fields in steps:
            current = await store.get_job(job.id)
            assert current is not None
            job = await store.transition(job.id, state, expect=(current.state,), **fields)


class _Response:
    def __init__(self) -> None:
        self.sent: dict[str, Any] = {}

    async def send_message(self, content: str = "", **kw: Any) -> None:
        self.sent = {"content": content, **kw}


async def store_examples(folder: Path) -> list[Example]:
    """/usage, /about and /server-usage, from a real store holding a fortnight of a small server's videos."""
    from cogs.about import About
    from cogs.usage import Usage

    settings = sample_settings(folder)
    store = SqliteStore(settings.database_path)
    await store.open()
    try:
        pattern = {1111: (1, 3, 4, 8, 11, 14, 15), 2222: (2, 3, 9, 10, 15), 3333: (5, 6, 12), 4444: (7, 13),
                   5555: (8,), 6666: (14,), 7777: (11,)}  # fmt: skip
        for user, days in pattern.items():
            for day in days:
                when = datetime(2026, 1, day, 9 + user % 7, tzinfo=UTC)
                await made_video(store, settings, user, when, duration=10 if day % 3 == 0 else 6,
                                 channel=3 if user % 2 else CHANNEL)  # fmt: skip
        await made_video(store, settings, 2222, datetime(2026, 1, 15, 10, tzinfo=UTC), fail=True)
        await store.set_guild_settings(GUILD, None, budget_usd=20.0)
        bot = SimpleNamespace(
            store=store, settings=settings, user=SimpleNamespace(mention="<@999>"),
            intents=SimpleNamespace(message_content=False), engine=SimpleNamespace(simulated=False),
        )  # fmt: skip
        alice = SimpleNamespace(id=1111, display_name="Alice", roles=())
        with fixed_clock(NOW):
            usage = await Usage(bot).usage_embed(GUILD, alice, yours=True, now=NOW)  # type: ignore[arg-type]
            response = _Response()
            interaction = SimpleNamespace(guild_id=GUILD, user=alice, response=response, locale="en-US")
            await About.about.callback(About(bot), interaction)  # type: ignore[arg-type]
            since = reports.period_since("month", NOW)
            report = reports.summarise(await store.report_rows(GUILD, since), "month", since, [])
            budget = await quota.budget_status(store, GUILD, now=NOW, settings=settings)
            embed = report_embed(report, budget)
            series = spend_chart.spend_series(
                await store.daily_spend(GUILD, since),
                since,
                NOW,
                budget_usd=budget.budget_usd if budget else None,
            ).named(NAMES)
            chart = spend_chart.render_png(series, "month")
            embed.set_image(url=f"attachment://{CHART_FILE}")
    finally:
        await store.close()
    return [
        Example(
            "usage",
            "/usage",
            "A member's own credits, what is in progress, and their totals here.",
            embeds=[usage.to_dict()],
            ephemeral=True,
        ),
        Example(
            "about",
            "/about",
            "How to use the bot, this server's limits and the member's credits.",
            embeds=[response.sent["embed"].to_dict()],
            ephemeral=True,
        ),
        Example(
            "server-usage",
            "/server-usage (moderators)",
            "Totals, top members, channels and models, with the chart of spend per day by the top members "
            "and the monthly budget per day as a dashed line.",
            embeds=[embed.to_dict()],
            attachments=[CHART_FILE],
            ephemeral=True,
            images={CHART_FILE: chart},
        ),
    ]


def refusal() -> Example:
    policy = MemberPolicy(5, Period.DAY, False, 2, 10, None)
    usage = UsageSnapshot(used_credits=5, granted_credits=0, user_active=0, guild_active=0, guild_month_usd=0)
    with fixed_clock(NOW):
        decision = quota.decide(policy, usage, 1, 0.28, NOW)
    assert not decision.ok
    return Example("refusal", "A refusal", "Refusals are one or two sentences, seen only by the member.",
                   content=str(decision.message), ephemeral=True)  # fmt: skip


async def card_examples() -> list[Example]:
    usage = quota.MemberUsage(
        policy=MemberPolicy(5, Period.DAY, False, 2, 10, None),
        usage=UsageSnapshot(
            used_credits=2, granted_credits=0, user_active=0, guild_active=0, guild_month_usd=0
        ),
        period_start=NOW.replace(hour=0),
        reset_at=NOW.replace(hour=0) + timedelta(days=1),
    )
    done = sample_job(
        state=JobState.DELIVERED, charge_state=ChargeState.CHARGED, delivered_at=NOW + timedelta(seconds=14)
    )
    queued = sample_job()
    buttons = result_view(done).to_components()
    cancel = card_view(queued)
    assert cancel is not None
    video = f"hailuo-{done.id}.mp4"
    return [
        card("card-queued", "Waiting in the local queue",
             "Answered at once (well inside Discord's 3 seconds); the requester can cancel while it waits.",
             cards.job_card(queued, queue_position=2, now=NOW), components=cancel.to_components()),
        card("card-at-novita", "At the video service",
             "Sent to Novita, which has not started on it yet.",
             cards.job_card(sample_job(state=JobState.SUBMITTED, task_id="task-17"), now=NOW)),
        card("card-generating", "Generating", "Edited every few seconds with Novita's progress and estimate.",
             cards.job_card(sample_job(state=JobState.PROCESSING, progress=42.0, eta_s=95,
                                       novita_status="PROCESSING"), now=NOW)),
        card("card-downloading", "Downloading", "The video is made; the bot fetches it to post it.",
             cards.job_card(sample_job(state=JobState.DOWNLOADING), now=NOW)),
        card("result", "The result",
             "The card becomes the result: the video is attached, with the requester's remaining credits and "
             "the buttons.",
             cards.result_card(done, usage.summary()), components=buttons, attachments=[video]),
        card("result-late", "The result, after Discord's 15-minute interaction window",
             "Posted as a new message that replies to the card and mentions only the requester.",
             cards.result_card(done, usage.summary()), content=cards.ready_text(done), components=buttons,
             attachments=[video]),
        card("card-failed", "A failed video",
             "Novita's reason is quoted as it came; the credits are returned.",
             cards.job_card(sample_job(state=JobState.FAILED, charge_state=ChargeState.REFUNDED,
                                       error="The video service couldn't make this video: “The content may "
                                       "violate our policies”. Your credits were returned."), now=NOW)),
        refusal(),
        card("trial", "Trial mode (NOVITA_MODE=simulate)",
             "Every card and result of a simulated job says so in its footer.",
             cards.result_card(sample_job(state=JobState.DELIVERED, simulated=True, delivered_at=NOW),
                               usage.summary()), attachments=[video]),
        card("card-frames", "From a first to a last frame",
             "A `last_frame` (Hailuo-02 only) shows as “first → last frame”; the footer names the model.",
             cards.job_card(sample_job(state=JobState.PROCESSING, progress=10.0, eta_s=200,
                                       novita_status="PROCESSING", image_path="first.jpg",
                                       last_frame_path="last.jpg"), now=NOW)),
        card("card-out-of-credit", "Waiting while the video account is out of credit",
             "After Novita says the account is out of credit, new submits pause and queued jobs say why.",
             cards.job_card(sample_job(), queue_position=1, now=NOW,
                            notice="The server's video account is out of credit, so jobs are waiting; the "
                            "moderators have been told. Next try "
                            f"<t:{int((NOW + timedelta(minutes=5)).timestamp())}:R>.")),
    ]  # fmt: skip


# The languages members read the bot in (Discord's locale codes), each with its own name.
LANGUAGES: dict[str, str] = {
    "en-US": "English",
    "zh-CN": "简体中文",
    "ja": "日本語",
    "ko": "한국어",
    "es-ES": "Español",
    "pt-BR": "Português do Brasil",
    "fr": "Français",
    "de": "Deutsch",
    "ru": "Русский",
}


def language_examples() -> list[Example]:
    """The job card while the video is made, as a member whose Discord is set to each language sees it."""
    return [
        card(f"card-generating.{code}", name, f"A member whose Discord is set to {name} (`{code}`).",
             cards.job_card(sample_job(state=JobState.PROCESSING, progress=42.0, eta_s=95,
                                       novita_status="PROCESSING", locale=code), now=NOW))
        for code, name in LANGUAGES.items()
    ]  # fmt: skip


async def _all() -> list[Example]:
    with tempfile.TemporaryDirectory() as folder:
        return [*await card_examples(), *await store_examples(Path(folder))]


def examples() -> list[Example]:
    """Every example, in the order the documentation shows them."""
    return asyncio.run(_all())
