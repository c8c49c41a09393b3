"""The /server-usage chart: its numbers come from the ledger (on SQLite and PostgreSQL), its PNG is valid and
small, and it is drawn off the event loop."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib import font_manager
from PIL import Image

from bot.core import reports, spend_chart, spend_chart_drawing
from bot.core.i18n import translations_for
from bot.core.models import JobState
from bot.core.report_rows import DailySpend
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store
from tests.test_reports import GUILD, new_job, walk

ROOT = Path(__file__).resolve().parent.parent

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
MONTH = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(contract_store: Store) -> Store:
    return contract_store


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


async def made(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch, user: int, when: datetime, **kw: object
) -> None:
    """A video accepted and charged at `when` (the store's clock is the edge we set)."""
    monkeypatch.setattr("bot.core.store.jobs.utcnow", lambda: when)
    job = await new_job(store, settings, user, now=when, **kw)  # type: ignore[arg-type]
    await walk(store, job, JobState.DELIVERED)


async def test_the_chart_data_is_what_the_ledger_charged_per_day_and_member(
    store: Store, relaxed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await made(store, relaxed, monkeypatch, 1, at(3))
    await made(store, relaxed, monkeypatch, 1, at(3, 20), duration=10)
    await made(store, relaxed, monkeypatch, 2, at(3))
    await made(store, relaxed, monkeypatch, 2, at(5))
    await made(store, relaxed, monkeypatch, 3, at(10, 1))
    failed = await new_job(store, relaxed, 3, now=at(10))
    await walk(store, failed, JobState.FAILED)  # refunded: no spend
    await walk(store, await new_job(store, relaxed, 3, now=at(10)), JobState.QUEUED)  # reserved: not yet
    monkeypatch.setattr("bot.core.store.jobs.utcnow", lambda: datetime(2026, 10, 31, 23, tzinfo=UTC))
    await walk(store, await new_job(store, relaxed, 4, now=datetime(2026, 10, 31, 23, tzinfo=UTC)),
               JobState.DELIVERED)  # fmt: skip

    rows = await store.daily_spend(GUILD, MONTH)
    assert [(r.day, r.user_id, r.credits) for r in rows] == [
        ("2026-11-03", 1, 3), ("2026-11-03", 2, 1), ("2026-11-05", 2, 1), ("2026-11-10", 3, 1),
    ]  # fmt: skip
    series = spend_chart.spend_series(rows, MONTH, NOW, names={2: "Bea"})
    assert series.unit == "usd"
    assert series.days[0] == date(2026, 11, 1)
    assert series.days[-1] == date(2026, 11, 30)
    by_member = {uid: values for uid, _name, values in series.members}
    assert by_member[1][2] == pytest.approx(0.28 + 0.56)
    assert by_member[2][2] == pytest.approx(0.28)
    assert by_member[2][4] == pytest.approx(0.28)
    assert by_member[3][9] == pytest.approx(0.28)
    assert [name for _uid, name, _ in series.members] == ["user1", "Bea", "user3"]  # display name wins
    assert not any(series.others)

    # The same money as the report's totals and the same credits as the ledger's charges.
    report = reports.summarise(await store.report_rows(GUILD, MONTH), "month", MONTH)
    assert series.total == pytest.approx(report.totals.usd)
    everything = spend_chart.spend_series(await store.daily_spend(GUILD), None, NOW, trial=True)
    assert everything.unit == "credits"
    assert everything.days[0] == date(2026, 10, 31)  # all time starts on the first charged day
    assert everything.total == (await store.ledger_totals(GUILD))["charge"]


async def test_a_live_store_charts_real_spend_and_a_trial_store_simulated_credits(
    store: Store, relaxed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await made(store, relaxed, monkeypatch, 1, at(3))
    monkeypatch.setattr("bot.core.store.jobs.utcnow", lambda: at(4))
    simulated = await new_job(store, relaxed, 2, now=at(4))
    await store.update_job(simulated.id, simulated=True)
    await walk(store, simulated, JobState.DELIVERED)

    assert [r.user_id for r in await store.daily_spend(GUILD, MONTH)] == [1]
    if isinstance(store, SqliteStore):
        trial = SqliteStore(relaxed.database_path, trial=True)
        await trial.open()
        try:
            rows = await trial.daily_spend(GUILD, MONTH)
        finally:
            await trial.close()
        assert [(r.day, r.user_id) for r in rows] == [("2026-11-04", 2)]
        series = spend_chart.spend_series(rows, MONTH, NOW, trial=True, budget_usd=10)
        assert series.unit == "credits"
        assert series.budget_per_day is None  # budgets are in USD and count real jobs only


def test_the_top_members_are_named_and_the_rest_are_others() -> None:
    rows = [
        DailySpend(day="2026-11-02", user_id=uid, user_name=f"m{uid}", usd=0.28 * uid, credits=uid)
        for uid in range(1, 9)
    ]
    series = spend_chart.spend_series(rows, MONTH, NOW, names={8: "<@8> Eight"})
    assert [uid for uid, _name, _values in series.members] == [8, 7, 6, 5, 4]
    assert series.members[0][1] == "<@8> Eight"  # drawn as text in a picture: it can never ping
    assert series.others[1] == pytest.approx(0.28 * (1 + 2 + 3))
    long = spend_chart.spend_series([replace(rows[0], user_name="x" * 80)], MONTH, NOW)
    assert len(long.members[0][1]) == spend_chart.NAME_MAX


def test_the_budget_line_is_the_monthly_budget_per_day_of_each_month() -> None:
    rows = [DailySpend(day="2026-02-27", user_id=1, user_name="a", usd=1.0, credits=2)]
    series = spend_chart.spend_series(
        rows, datetime(2026, 2, 27, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), budget_usd=56
    )
    assert series.budget_per_day == pytest.approx([2.0, 2.0, 56 / 31, 56 / 31])
    assert spend_chart.spend_series(rows, None, NOW).budget_per_day is None


def test_an_empty_period_has_no_spend() -> None:
    assert spend_chart.spend_series([], MONTH, NOW).empty
    assert spend_chart.spend_series([], None, NOW).days == [NOW.date()]


@pytest.mark.parametrize(
    ("since", "members", "budget"),
    [(NOW.replace(hour=0), 1, None), (MONTH, 12, 50.0), (NOW - timedelta(days=800), 40, 50.0)],
)
def test_the_chart_is_a_small_png(since: datetime, members: int, budget: float | None) -> None:
    rows = [
        DailySpend(day=(since + timedelta(days=d)).date().isoformat(), user_id=u, user_name=f"Member {u} $x$",
                   usd=0.28 * (1 + (d + u) % 4), credits=1)
        for d in range(0, (NOW - since).days + 1, 3) for u in range(members)
    ]  # fmt: skip
    series = spend_chart.spend_series(rows, since, NOW, budget_usd=budget)
    data = spend_chart.render_png(series, "month")
    assert len(data) < spend_chart.MAX_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == spend_chart.SIZE_PX
        image.verify()


async def test_the_chart_is_drawn_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = spend_chart.render_png

    def spy(series: spend_chart.SpendSeries, period: str, locale: str | None = None) -> bytes:
        threads.append(threading.current_thread())
        return real(series, period, locale)

    monkeypatch.setattr(spend_chart, "render_png", spy)
    rows = [DailySpend(day="2026-11-02", user_id=1, user_name="a", usd=0.28, credits=1)]
    data = await spend_chart.chart_png(spend_chart.spend_series(rows, MONTH, NOW), "month", "ja")
    assert data.startswith(b"\x89PNG")
    assert threads
    assert threads[0] is not threading.current_thread()  # this test's thread runs the event loop


def localised_series() -> spend_chart.SpendSeries:
    rows = [
        DailySpend(day=f"2026-11-{d:02d}", user_id=u, user_name=name, usd=0.28 * (1 + (d + u) % 4), credits=1)
        for d in range(1, 30, 2) for u, name in enumerate(["山田太郎", "김민준", None, "A", "B", "C", "D"])
    ]  # fmt: skip
    return spend_chart.spend_series(rows, MONTH, NOW, budget_usd=50.0)


@pytest.mark.parametrize(("locale", "catalog", "money", "november"), [("ja", "ja", "$50.00", "11月"),
                         ("pt-BR", "pt_BR", "US$\xa050,00", "nov.")])  # fmt: skip
def test_the_chart_words_come_from_the_moderators_catalog(
    locale: str, catalog: str, money: str, november: str
) -> None:
    series = localised_series()
    tr = translations_for(catalog).gettext
    labels = spend_chart.chart_labels(series, "month", locale)
    english = spend_chart.chart_labels(series, "month", "en-US")

    assert labels.title == tr("Spend per day — this month") != english.title
    assert labels.y_axis == tr("Estimated spend (USD)") != english.y_axis
    assert labels.x_axis == tr("Day (UTC)") != english.x_axis
    nobody = tr("A member who left")
    assert nobody != "A member who left"
    assert {"山田太郎", "김민준", nobody} <= set(labels.legend[:5])  # the member who left has no stored name
    assert labels.legend[-2] == tr("Others") != "Others"
    assert labels.legend[-1] == tr("Budget per day ({budget} a month)").replace("{budget}", money)
    assert labels.money(50) == money  # the USD axis
    assert labels.ticks
    assert all(november in tick for tick in labels.ticks)
    assert english.ticks[0] == "Nov 1"


def test_the_trial_title_and_credits_axis_are_translated_too() -> None:
    series = replace(localised_series(), trial=True, unit="credits", budget_per_day=None)
    tr = translations_for("ja").gettext
    labels = spend_chart.chart_labels(series, "week", "ja")
    assert labels.title == tr("Simulated use per day — this week (trial mode, not billed)")
    assert labels.y_axis == tr("Credits charged") != "Credits charged"


def test_a_japanese_moderators_chart_is_a_small_png() -> None:
    data = spend_chart.render_png(localised_series(), "month", "ja")
    assert len(data) < spend_chart.MAX_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == spend_chart.SIZE_PX
        image.verify()


def test_cjk_text_falls_back_to_an_installed_noto_cjk_font() -> None:
    families = spend_chart_drawing.font_families("ja")
    assert families[0] == "DejaVu Sans"
    system = [path for path in font_manager.findSystemFonts() if "CJK" in path and "Sans" in path]
    if not system:
        pytest.skip("no Noto CJK font on this machine (Debian: fonts-noto-cjk)")
    assert any(family.startswith("Noto Sans CJK") for family in families[1:])
    japanese = font_manager.FontProperties(family=list(families))
    found = font_manager.fontManager._find_fonts_by_props(
        japanese
    )  # the fallback chain matplotlib draws with
    assert any("CJK" in str(path) for path in found)


def test_without_cjk_fonts_the_list_is_dejavu_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spend_chart_drawing, "_installed_families", lambda: frozenset({"DejaVu Sans"}))
    spend_chart_drawing.font_families.cache_clear()
    try:
        assert spend_chart_drawing.font_families("ko") == ("DejaVu Sans",)
    finally:
        spend_chart_drawing.font_families.cache_clear()


def test_the_bot_loads_matplotlib_only_when_a_chart_is_drawn() -> None:
    """matplotlib and numpy weigh ~35 MB: a bot that never draws a chart must not carry them."""
    code = "import sys, bot.discord_side.app, cogs.usage; print('matplotlib' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "False"
