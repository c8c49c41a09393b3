"""Usage reports for moderators: totals, top members, channels, undelivered jobs, and the CSV export.

Pure shaping of the rows `Store.report_rows` returns (no I/O), so every figure can be tested directly; the
embed that shows a report in Discord is drawn by `bot/discord_side/report_embed.py`.
A video "succeeded" when it was made and paid for (its credits were charged), whether or not it could be
posted; the estimated cost counts only those, at the price recorded on each job when it was accepted.
Simulated jobs (trial mode) are kept apart: they appear in their own labelled tally and never in the totals,
the members, the channels or the cost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .models import ChargeState, DeliveryRoute, JobState, parse_iso
from .quota import period_window
from .report_rows import JobEvent, ReportRow
from .settings import Period

PERIOD_LABELS = {"day": "today", "week": "this week", "month": "this month", "all": "all time"}


def period_since(period: str, now: datetime) -> datetime | None:
    """Start of the fixed UTC window for `period` (day/week/month), None for all time."""
    return None if period == "all" else period_window(Period(period), now)[0]


def outcome(row: ReportRow) -> str:
    if row.state in (JobState.DELIVERED, JobState.UNDELIVERED, JobState.FAILED, JobState.CANCELLED):
        return row.state.value
    return "in progress"


@dataclass
class Tally:
    jobs: int = 0
    succeeded: int = 0  # made and charged (delivered or not)
    failed: int = 0
    cancelled: int = 0
    undelivered: int = 0
    active: int = 0
    credits: int = 0  # charged
    seconds: int = 0  # of video made
    usd: float = 0.0  # estimated cost of the videos made
    reserved_usd: float = 0.0  # held by jobs still in progress

    def add(self, row: ReportRow) -> None:
        self.jobs += 1
        result = outcome(row)
        if result == "failed":
            self.failed += 1
        elif result == "cancelled":
            self.cancelled += 1
        elif result == "undelivered":
            self.undelivered += 1
        elif result == "in progress":
            self.active += 1
        if row.charge_state == ChargeState.CHARGED:
            self.succeeded += 1
            self.credits += row.credits
            self.seconds += row.duration
            self.usd += row.cost_usd
        elif row.charge_state == ChargeState.RESERVED:
            self.reserved_usd += row.cost_usd


@dataclass
class UsageReport:
    period: str
    since: datetime | None
    totals: Tally
    members: list[tuple[int, str | None, Tally]]  # most expensive first
    channels: list[tuple[int | None, Tally]]  # busiest first
    undelivered: list[ReportRow] = field(default_factory=list)  # any age: still actionable
    models: list[tuple[str, Tally]] = field(default_factory=list)  # by video model, most expensive first
    simulated: Tally = field(default_factory=Tally)  # trial-mode jobs: shown apart, never billed


def _rank(tally: Tally) -> tuple[float, int, int]:
    return (-tally.usd, -tally.credits, -tally.jobs)


def summarise(
    rows: Iterable[ReportRow],
    period: str,
    since: datetime | None,
    undelivered: Iterable[ReportRow] = (),
) -> UsageReport:
    totals = Tally()
    members: dict[int, Tally] = {}
    names: dict[int, str | None] = {}
    channels: dict[int | None, Tally] = {}
    models: dict[str, Tally] = {}
    simulated = Tally()
    for row in rows:
        if row.simulated:
            simulated.add(row)
            continue
        models.setdefault(row.model, Tally()).add(row)
        totals.add(row)
        members.setdefault(row.user_id, Tally()).add(row)
        names[row.user_id] = row.user_name or names.get(row.user_id)
        channels.setdefault(row.channel_id, Tally()).add(row)
    ranked_members = sorted(members.items(), key=lambda kv: (_rank(kv[1]), kv[0]))
    ranked_channels = sorted(channels.items(), key=lambda kv: (-kv[1].jobs, _rank(kv[1]), kv[0] or 0))
    return UsageReport(
        period=period,
        since=since,
        totals=totals,
        members=[(uid, names.get(uid), t) for uid, t in ranked_members],
        channels=ranked_channels,
        undelivered=list(undelivered),
        models=sorted(models.items(), key=lambda kv: (_rank(kv[1]), kv[0])),
        simulated=simulated,
    )


# Rendering ------------------------------------------------------------------------------------------------
def money(usd: float) -> str:
    return f"${usd:,.2f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# CSV --------------------------------------------------------------------------------------------------
CSV_COLUMNS = (
    "job_id", "created_utc", "finished_utc", "delivered_utc", "seconds_taken", "user", "user_id", "channel",
    "channel_id", "entry", "outcome", "state", "prompt", "camera", "duration_s", "resolution",
    "prompt_expansion", "from_image", "credits", "charge", "cost_usd", "task_id", "delivered_via",
    "result_link", "reencoded", "error", "timeline", "model", "last_frame", "simulated",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: object) -> str:
    """Free text for a spreadsheet: a leading =, +, -, @ would run as a formula, so it is quoted away."""
    text = "" if value is None else str(value).replace("\r\n", "\n").replace("\r", "\n")
    return "'" + text if text.startswith(_FORMULA_START) else text


def time_cell(text: str | None) -> str:
    """ISO 8601 date and time in UTC with a space, which every spreadsheet reads as a date-time."""
    dt = parse_iso(text)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def _seconds(start: str | None, end: str | None) -> str:
    a, b = parse_iso(start), parse_iso(end)
    return f"{(b - a).total_seconds():.1f}" if a and b else ""


def timeline_cell(created: str | None, events: Iterable[JobEvent]) -> str:
    """'accepted +0.0s > queued +0.1s > …': every transition, seconds after the job was accepted."""
    start = parse_iso(created)
    parts = []
    for event in events:
        at = parse_iso(event.at)
        offset = f" +{(at - start).total_seconds():.1f}s" if at and start else ""
        label = event.state + (f"({event.detail})" if event.state == "delivery-attempt" else "")
        parts.append(label + offset)
    return " > ".join(parts)


def jump_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str:
    if not (channel_id and message_id):
        return ""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def csv_row(
    row: ReportRow, events: Iterable[JobEvent], channel_name: Callable[[int], str | None]
) -> list[str]:
    channel_id = row.channel_id
    name = channel_name(channel_id) if channel_id else None
    end = row.delivered_at or row.finished_at
    link = ""
    if row.state == JobState.DELIVERED and row.delivered_via != DeliveryRoute.DM:
        link = jump_link(row.guild_id, row.result_channel_id, row.result_message_id)
    return [
        str(row.id),
        time_cell(row.created_at),
        time_cell(row.finished_at),
        time_cell(row.delivered_at),
        _seconds(row.created_at, end) if outcome(row) != "in progress" else "",
        text_cell(row.user_name),
        str(row.user_id),
        text_cell(f"#{name}" if name else ""),
        str(channel_id or ""),
        row.entry.value,
        outcome(row),
        row.state.value,
        text_cell(row.prompt),
        text_cell(row.camera),
        str(row.duration),
        row.resolution,
        "yes" if row.prompt_expansion else "no",
        "yes" if row.image_name else "no",
        str(row.credits),
        row.charge_state.value,
        f"{row.cost_usd:.2f}",
        text_cell(row.task_id),
        row.delivered_via.value if row.delivered_via else "",
        link,
        "yes" if row.reencoded else "no",
        text_cell(row.error),
        timeline_cell(row.created_at, events),
        row.model,
        "yes" if row.last_frame_name else "no",
        "yes" if row.simulated else "no",
    ]


def csv_bytes(
    rows: Iterable[ReportRow],
    events: Mapping[int, Iterable[JobEvent]],
    channel_name: Callable[[int], str | None] = lambda _id: None,
) -> bytes:
    """One row per job, RFC 4180 quoting, UTF-8 with a byte-order mark so spreadsheets read emoji."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(csv_row(row, events.get(row.id, ()), channel_name))
    return buf.getvalue().encode("utf-8-sig")
