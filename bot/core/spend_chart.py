"""The /server-usage chart: spend per UTC day over the period, stacked by the top members, as a PNG.

`spend_series` shapes the rows of `Store.daily_spend` (what the ledger charged, per day and member) into the
numbers drawn, so they can be tested against the ledger; `render_png` draws them with matplotlib's Agg
backend (no display, no Discord) and is slow enough (~0.2 s) that callers run it in a worker thread:
`chart_png` does.

The budget line is the monthly budget spread over the days of its month ("budget per day"), drawn over the
daily bars in the same unit: a moderator sees at a glance which days ran above the pace that would use the
whole budget by the month's end, for any period (a day, a week, a month or all time, across months). A
cumulative-spend-against-budget line would need a second scale and restarts every month, which is harder
to read over "all time". Simulated (trial-mode) spend and spend without a price are charted in credits, and
then there is no budget line: budgets are in USD and only real jobs count against them.

The picture has its own opaque dark background and light text, so it reads the same in Discord's dark and
light themes; the colours are the Okabe-Ito set (told apart with colour-blindness), without mid-greys.

It speaks the moderator's language like every other answer: its words are msgids rendered for the
interaction's locale (`chart_labels`), money and day ticks are formatted by Babel for that locale, and the
font list falls back per glyph from DejaVu Sans to the Noto CJK fonts when installed (Debian's
`fonts-noto-cjk`), so Chinese, Japanese and Korean labels and display names are not drawn as boxes.
"""

from __future__ import annotations

import asyncio
import calendar
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_currency

from .i18n import Money, Text, _, babel_locale, render
from .report_rows import DailySpend

TOP = 5  # members drawn by name; the rest are stacked as "others" (the embed lists the same top five)
NAME_MAX = 24
MAX_BYTES = 200_000
SIZE_PX = (1000, 500)

# Every word the picture shows, in one place; whole titles per period read better in every language than a
# title with a period word put in.
TITLES: dict[str, Text] = {
    "day": _("Spend per day — today"),
    "week": _("Spend per day — this week"),
    "month": _("Spend per day — this month"),
    "all": _("Spend per day — all time"),
}
TRIAL_TITLES: dict[str, Text] = {
    "day": _("Simulated use per day — today (trial mode, not billed)"),
    "week": _("Simulated use per day — this week (trial mode, not billed)"),
    "month": _("Simulated use per day — this month (trial mode, not billed)"),
    "all": _("Simulated use per day — all time (trial mode, not billed)"),
}
AXIS_USD = _("Estimated spend (USD)")
AXIS_CREDITS = _("Credits charged")
OTHERS = _("Others")
BUDGET = _("Budget per day ({budget} a month)")
DAY_AXIS = _("Day (UTC)")
NOBODY = _("A member who left")


@dataclass(frozen=True)
class SpendSeries:
    """The chart's numbers: one value per day for each top member, and for everyone else together."""

    unit: Literal["usd", "credits"]
    days: list[date]
    members: list[
        tuple[int, str, list[float]]
    ]  # (user id, display name or "" if unknown, per day), biggest first
    others: list[float]
    budget_per_day: list[float] | None  # USD, one per day; None without a budget or in credits
    budget_usd: float | None = None  # the monthly budget the line comes from
    trial: bool = False

    @property
    def total(self) -> float:
        return sum(sum(values) for _uid, _name, values in self.members) + sum(self.others)

    @property
    def empty(self) -> bool:
        return self.total <= 0

    def named(self, names: Mapping[int, str]) -> SpendSeries:
        """The same series with these members' display names (read from Discord) instead of stored ones."""
        members = [
            (uid, short_name(names[uid]) if uid in names else name, v) for uid, name, v in self.members
        ]
        return replace(self, members=members)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def budget_per_day(budget_usd: float, day: date) -> float:
    """The monthly budget spread evenly over the days of `day`'s month."""
    return budget_usd / calendar.monthrange(day.year, day.month)[1]


def short_name(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1].rstrip() + "…"


def spend_series(
    rows: Iterable[DailySpend],
    since: datetime | None,
    now: datetime,
    *,
    trial: bool = False,
    budget_usd: float | None = None,
    names: Mapping[int, str] | None = None,
    top: int = TOP,
) -> SpendSeries:
    """Shape `Store.daily_spend` rows into the chart's series, from `since`'s day (the first charged day
    for all time) to `now`'s. USD, unless in trial mode or when nothing charged had a price: credits.
    `names` are display names read from Discord; a member not in it keeps the name stored with their jobs."""
    rows = list(rows)
    usd = sum(r.usd for r in rows)
    unit: Literal["usd", "credits"] = "usd" if not trial and usd > 0 else "credits"
    first = since.date() if since else min((date.fromisoformat(r.day) for r in rows), default=now.date())
    days = _days(first, max(first, now.date()))
    index = {d: i for i, d in enumerate(days)}
    per_member: dict[int, list[float]] = {}
    stored: dict[int, str] = {}
    for r in rows:
        uid = r.user_id
        values = per_member.setdefault(uid, [0.0] * len(days))
        i = index.get(date.fromisoformat(r.day))
        if i is not None:
            values[i] += r.usd if unit == "usd" else float(r.credits)
        if r.user_name:
            stored[uid] = r.user_name
    ranked = sorted(per_member.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    ranked = [(uid, values) for uid, values in ranked if sum(values) > 0]
    names = names or {}
    members = [
        (uid, short_name(names.get(uid) or stored.get(uid) or ""), values) for uid, values in ranked[:top]
    ]
    others = [sum(values[i] for _uid, values in ranked[top:]) for i in range(len(days))]
    budget = (
        [budget_per_day(budget_usd, d) for d in days] if budget_usd is not None and unit == "usd" else None
    )
    return SpendSeries(unit, days, members, others, budget, budget_usd if budget else None, trial)


@dataclass(frozen=True)
class ChartLabels:
    """Every string the picture shows, in the reader's language; `money` formats the USD axis."""

    title: str
    y_axis: str
    x_axis: str
    legend: list[str]  # the members', then "Others" if drawn, then the budget line's if drawn
    ticks: list[str]  # the day labels at `tick_positions(days)`
    locale: Locale

    def money(self, amount: float) -> str:
        return format_currency(amount, "USD", locale=self.locale)


def chart_labels(series: SpendSeries, period: str, locale: str | None = None) -> ChartLabels:
    """The chart's words for `period` (day, week, month or all) in the language of `locale`."""
    say = functools.partial(render, locale=locale)
    legend = [name or say(NOBODY) for _uid, name, _values in series.members]
    if any(series.others):
        legend.append(say(OTHERS))
    if series.budget_per_day is not None:
        legend.append(say(BUDGET.with_params(budget=Money(series.budget_usd or 0))))
    where = babel_locale(locale)
    return ChartLabels(
        title=say((TRIAL_TITLES if series.trial else TITLES)[period]),
        y_axis=say(AXIS_USD if series.unit == "usd" else AXIS_CREDITS),
        x_axis=say(DAY_AXIS),
        legend=legend,
        ticks=[
            format_skeleton(_tick_skeleton(series.days), series.days[i], locale=where)
            for i in tick_positions(series.days)
        ],
        locale=where,
    )


def render_png(series: SpendSeries, period: str, locale: str | None = None) -> bytes:
    """The chart as PNG bytes (about 1000×500 px, well under Discord's and our 200 kB limit), its words in
    the language of `locale` (a Discord locale; English without one)."""
    # matplotlib (with numpy, ~35 MB) loads only when a moderator first asks for a chart, not with the bot.
    from . import spend_chart_drawing as drawing

    return drawing.draw(series, chart_labels(series, period, locale), list(drawing.font_families(locale)))


def tick_positions(days: list[date]) -> list[int]:
    """At most about 12 day labels: every day for a week, then spaced out."""
    step = max(1, -(-len(days) // 12))
    if step > 1 and step < 7:
        step = 7
    return list(range(0, len(days), step))


def _tick_skeleton(days: list[date]) -> str:
    """Babel date skeletons: weekday and day for a week, day and month up to ~a year, then month and year."""
    return "Ed" if len(days) <= 7 else ("MMMd" if len(days) <= 400 else "yMMM")


async def chart_png(series: SpendSeries, period: str, locale: str | None = None) -> bytes:
    """`render_png` in a worker thread: drawing takes long enough to stall every member's interactions."""
    return await asyncio.to_thread(render_png, series, period, locale)
