"""What the store's report queries return: one job as a report sees it, its audit trail, a member's totals.

Typed values built by the store; `bot/core/reports.py` shapes them into figures and the CSV export. A report
row carries only what moderators may see: never interaction tokens, Discord CDN links or local file paths.
Times stay the stored ISO 8601 text, as the export writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import ChargeState, DeliveryRoute, Entry, JobState


@dataclass(frozen=True)
class ReportRow:
    """One job of a server, as /server-usage and the CSV export see it. Field names are column names."""

    id: int
    state: JobState
    guild_id: int | None
    channel_id: int | None
    user_id: int
    user_name: str | None
    entry: Entry
    prompt: str
    camera: str | None
    duration: int
    resolution: str
    prompt_expansion: bool
    image_name: str | None
    parent_job_id: int | None
    credits: int
    cost_usd: float
    charge_state: ChargeState
    task_id: str | None
    novita_status: str | None
    delivered_via: DeliveryRoute | None
    result_channel_id: int | None
    result_message_id: int | None
    card_channel_id: int | None
    card_message_id: int | None
    reencoded: bool
    error: str | None
    error_detail: str | None
    created_at: str
    submitted_at: str | None
    finished_at: str | None
    delivered_at: str | None
    simulated: bool
    model: str
    last_frame_name: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReportRow:
        values = {name: row[name] for name in REPORT_COLUMNS}
        for name, convert in _CONVERT.items():
            values[name] = convert(values[name])
        via = values["delivered_via"]
        values["delivered_via"] = DeliveryRoute(via) if via else None
        return cls(**values)


REPORT_COLUMNS = tuple(f.name for f in dataclasses.fields(ReportRow))  # what the store selects
_CONVERT: dict[str, Any] = {
    "state": JobState,
    "entry": Entry,
    "charge_state": ChargeState,
    "prompt_expansion": bool,
    "reencoded": bool,
    "simulated": bool,
    "cost_usd": float,
}


@dataclass(frozen=True)
class JobEvent:
    """One step of a job's audit trail: the state (or a delivery attempt), when, and its detail."""

    state: str
    at: str
    detail: str | None = None


@dataclass(frozen=True)
class MemberTotals:
    """Lifetime figures of one member in one server; a video counts once it was paid for (charged)."""

    jobs: int
    succeeded: int
    failed: int
    credits: int
    usd: float
    seconds: int


@dataclass(frozen=True)
class DailySpend:
    """What the ledger charged one member on one UTC day (the /server-usage chart's data)."""

    day: str  # YYYY-MM-DD
    user_id: int
    user_name: str | None
    usd: float
    credits: int
