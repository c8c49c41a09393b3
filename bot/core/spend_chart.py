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
"""

from __future__ import annotations

import asyncio
import calendar
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, safe in any thread

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .report_rows import DailySpend

TOP = 5  # members drawn by name; the rest are stacked as "others" (the embed lists the same top five)
NAME_MAX = 24
MAX_BYTES = 200_000
SIZE_PX = (1000, 500)

# Every word the picture shows, in one place (for translation).
TEXT = {
    "title": "Spend per day — {period}",
    "title_trial": "Simulated use per day — {period} (trial mode, not billed)",
    "axis_usd": "Estimated spend (USD)",
    "axis_credits": "Credits charged",
    "others": "Others",
    "budget": "Budget per day (${budget:,.2f} a month)",
    "day": "Day (UTC)",
    "nobody": "A member who left",
}

BACKGROUND = "#1e1f22"
FOREGROUND = "#f2f3f5"
GRID = "#3f4147"
COLOURS = ("#56b4e9", "#e69f00", "#009e73", "#f0e442", "#cc79a7", "#0072b2")
OTHERS_COLOUR = "#d5d7db"
BUDGET_COLOUR = "#ff5a5f"


@dataclass(frozen=True)
class SpendSeries:
    """The chart's numbers: one value per day for each top member, and for everyone else together."""

    unit: Literal["usd", "credits"]
    days: list[date]
    members: list[tuple[int, str, list[float]]]  # (user id, display name, per day), biggest first
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
        (uid, short_name(names.get(uid) or stored.get(uid) or TEXT["nobody"]), values)
        for uid, values in ranked[:top]
    ]
    others = [sum(values[i] for _uid, values in ranked[top:]) for i in range(len(days))]
    budget = (
        [budget_per_day(budget_usd, d) for d in days] if budget_usd is not None and unit == "usd" else None
    )
    return SpendSeries(unit, days, members, others, budget, budget_usd if budget else None, trial)


def render_png(series: SpendSeries, period_label: str) -> bytes:
    """The chart as PNG bytes (about 1000×500 px, well under Discord's and our 200 kB limit)."""
    figure = Figure(figsize=(SIZE_PX[0] / 100, SIZE_PX[1] / 100), dpi=100, facecolor=BACKGROUND)
    ax = figure.add_subplot()
    ax.set_facecolor(BACKGROUND)
    x = list(range(len(series.days)))
    bottom = [0.0] * len(x)
    handles: list[Any] = []
    labels: list[str] = []
    width = 0.8 if len(x) <= 62 else 1.0
    stacks = [(name, values) for _uid, name, values in series.members]
    if any(series.others):
        stacks.append((TEXT["others"], series.others))
    for i, (name, values) in enumerate(stacks):
        colour = OTHERS_COLOUR if i >= len(series.members) else COLOURS[i % len(COLOURS)]
        ax.bar(x, values, width=width, bottom=bottom, color=colour, linewidth=0)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        handles.append(Patch(color=colour))
        labels.append(name)
    if series.budget_per_day is not None:
        (line,) = ax.step(
            [x[0] - 0.5, *x, x[-1] + 0.5] if x else [],
            [series.budget_per_day[0], *series.budget_per_day, series.budget_per_day[-1]] if x else [],
            where="mid",
            color=BUDGET_COLOUR,
            linewidth=2,
            linestyle="--",
        )
        handles.append(line)
        labels.append(TEXT["budget"].format(budget=series.budget_usd or 0))
    title = TEXT["title_trial" if series.trial else "title"].format(period=period_label)
    ax.set_title(title, color=FOREGROUND, fontsize=17, loc="left", pad=12).set_parse_math(False)
    ax.set_ylabel(TEXT["axis_usd" if series.unit == "usd" else "axis_credits"], color=FOREGROUND, fontsize=14)
    ax.set_xlabel(TEXT["day"], color=FOREGROUND, fontsize=14)
    ax.set_xticks(*_ticks(series.days))
    ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_ylim(0, max([*bottom, *(series.budget_per_day or []), 0.01]) * 1.15)
    if series.unit == "usd":
        ax.yaxis.set_major_formatter("${x:,.2f}")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(colors=FOREGROUND, labelsize=13)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)
    if handles:
        legend = ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            frameon=False,
            fontsize=13,
            labelcolor=FOREGROUND,
        )
        legend.set_in_layout(True)
        for text in legend.get_texts():
            text.set_parse_math(False)  # a display name with two "$" is not a formula
    figure.set_layout_engine("constrained")
    out = io.BytesIO()
    figure.savefig(out, format="png", facecolor=BACKGROUND, metadata={"Software": None})
    return out.getvalue()


def _ticks(days: list[date]) -> tuple[list[int], list[str]]:
    """At most about 12 day labels: every day for a week, then spaced out."""
    step = max(1, -(-len(days) // 12))
    if step > 1 and step < 7:
        step = 7
    positions = list(range(0, len(days), step))
    fmt = "%a %d" if len(days) <= 7 else ("%d %b" if len(days) <= 400 else "%b %Y")
    return positions, [days[i].strftime(fmt) for i in positions]


async def chart_png(series: SpendSeries, period_label: str) -> bytes:
    """`render_png` in a worker thread: drawing takes long enough to stall every member's interactions."""
    return await asyncio.to_thread(render_png, series, period_label)
