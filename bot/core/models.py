"""The job as data: its states, the allowed transitions, and the request that creates it.

A job is one row in SQLite from the first moment; every transition is one committed write with a timestamp
(see `bot/core/store/`). The row carries everything needed to resume without Discord's memory.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from . import i18n
from .i18n import Text


class JobState(StrEnum):
    ACCEPTED = "accepted"  # credits reserved, input not yet prepared (image download / normalise)
    QUEUED = "queued"  # waiting in the local queue for the Novita rate and in-flight limits
    SUBMITTING = "submitting"  # the submit request may be on the wire: "we may have paid"
    SUBMITTED = "submitted"  # Novita gave a task id
    PROCESSING = "processing"  # Novita reports the task running
    DOWNLOADING = "downloading"  # the video is being fetched to a local file
    DELIVERING = "delivering"  # the video is being posted
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNDELIVERED = "undelivered"  # the video exists locally but no destination accepted it


FINAL_STATES = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})
# Undelivered is an end for the runner, but /jobs can redeliver it.
RESTING_STATES = FINAL_STATES | {JobState.UNDELIVERED}
# States in which the job occupies a Novita in-flight slot.
AT_NOVITA = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.PROCESSING})
ACTIVE_STATES = frozenset(JobState) - RESTING_STATES

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset({JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTING: frozenset({JobState.SUBMITTED, JobState.QUEUED, JobState.FAILED}),
    JobState.SUBMITTED: frozenset({JobState.PROCESSING, JobState.DOWNLOADING, JobState.FAILED}),
    JobState.PROCESSING: frozenset({JobState.DOWNLOADING, JobState.FAILED}),
    JobState.DOWNLOADING: frozenset({JobState.DELIVERING, JobState.FAILED}),
    JobState.DELIVERING: frozenset({JobState.DELIVERED, JobState.UNDELIVERED}),
    JobState.UNDELIVERED: frozenset({JobState.DELIVERING, JobState.DELIVERED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class ChargeState(StrEnum):
    RESERVED = "reserved"
    CHARGED = "charged"
    REFUNDED = "refunded"


class Entry(StrEnum):
    """Where a job was asked for (the `entry` column)."""

    SLASH = "slash"  # /video
    CONTEXT = "context"  # Animate image
    MENTION = "mention"
    REGENERATE = "regenerate"  # the result buttons
    EDIT = "edit"
    CONTINUE = "continue"
    CLI = "cli"  # python -m bot generate


class DeliveryRoute(StrEnum):
    """How a finished video reached its requester (`Delivered.via`, the `delivered_via` column)."""

    INTERACTION = "interaction"  # into the job card
    CHANNEL = "channel"
    DM = "dm"
    CONSOLE = "console"  # the command line


class InvalidTransition(Exception):
    pass


def check_transition(old: JobState, new: JobState) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"job cannot go from {old} to {new}")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


CAMERA_MOVES = (
    "Truck left",
    "Truck right",
    "Pan left",
    "Pan right",
    "Push in",
    "Pull out",
    "Pedestal up",
    "Pedestal down",
    "Tilt up",
    "Tilt down",
    "Zoom in",
    "Zoom out",
    "Shake",
    "Tracking shot",
    "Static shot",
)


@dataclass(frozen=True)
class JobRequest:
    """What a member asked for, after the cheap checks; every entry point builds one."""

    guild_id: int | None
    channel_id: int | None
    user_id: int
    prompt: str
    duration: int = 6
    resolution: str = "768P"
    prompt_expansion: bool = True
    camera: str | None = None
    image_url: str | None = None  # a URL to fetch (Discord attachment); or
    image_bytes: bytes | None = field(default=None, repr=False)  # image already in hand (Continue, CLI)
    image_path: str | None = None  # where the runner saved `image_bytes` (set by the runner, not callers)
    image_name: str | None = None
    entry: Entry = Entry.SLASH
    user_name: str | None = None
    role_ids: tuple[int, ...] = ()
    parent_job_id: int | None = None
    source_message_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    simulated: bool = False
    operator: bool = False  # the operator's own CLI job: no member quota applies
    model: str = "hailuo-02"  # a key of bot.core.video_models.MODELS
    last_frame_url: str | None = None  # the last frame (Hailuo-02's `end_image`): a URL to fetch; or
    last_frame_bytes: bytes | None = field(default=None, repr=False)  # already in hand (Regenerate)
    last_frame_path: str | None = None  # set by the runner, like image_path
    last_frame_name: str | None = None
    locale: str | None = None  # the requester's Discord locale (interaction.locale): the job speaks it

    @property
    def full_prompt(self) -> str:
        """The prompt sent to Novita: camera moves are appended in Hailuo's bracket syntax."""
        return f"{self.prompt} [{self.camera}]" if self.camera else self.prompt

    def columns(self) -> dict[str, Any]:
        """The job-row columns this request fills (the rest are set by admission and the runner)."""
        skip = {"image_bytes", "operator", "last_frame_bytes"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


@dataclass
class Job:
    """A job row. Field names are the column names."""

    id: int
    state: JobState
    guild_id: int | None
    channel_id: int | None
    user_id: int
    prompt: str
    duration: int
    resolution: str
    prompt_expansion: bool
    credits: int
    cost_usd: float
    charge_state: ChargeState
    created_at: datetime
    updated_at: datetime
    camera: str | None = None
    entry: Entry = Entry.SLASH
    user_name: str | None = None
    role_ids: tuple[int, ...] = ()  # the requester's roles when asked (their quota tier)
    image_url: str | None = None
    image_path: str | None = None
    image_name: str | None = None
    parent_job_id: int | None = None
    source_message_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    card_channel_id: int | None = None
    card_message_id: int | None = None
    result_channel_id: int | None = None
    result_message_id: int | None = None
    delivered_via: DeliveryRoute | None = None
    task_id: str | None = None
    novita_status: str | None = None
    progress: float | None = None
    eta_s: float | None = None
    polls: int = 0
    video_path: str | None = None
    video_bytes: int | None = None
    reencoded: bool = False
    error_detail: str | None = None
    period_start: datetime | None = None
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    delivered_at: datetime | None = None
    deadline_at: datetime | None = None
    simulated: bool = False
    prepare_attempts: int = 0  # times the runner began preparing the input image (bounded across restarts)
    model: str = "hailuo-02"
    last_frame_url: str | None = None
    last_frame_path: str | None = None
    last_frame_name: str | None = None
    lease_owner: str | None = None  # the process driving the job now (see JobRunner and Store.claim_jobs)
    lease_until: datetime | None = None
    locale: str | None = None  # the requester's Discord locale: cards, results and DMs are written in it
    error: str | None = None  # what the member reads: a stored `bot.core.i18n.Text` (see `error_text`)

    @property
    def error_text(self) -> Text | None:
        """The stored error, ready to render in the reader's language."""
        return i18n.loads(self.error)

    @property
    def full_prompt(self) -> str:
        return f"{self.prompt} [{self.camera}]" if self.camera else self.prompt

    @property
    def has_image(self) -> bool:
        return bool(self.image_url or self.image_path)

    @property
    def has_last_frame(self) -> bool:
        return bool(self.last_frame_url or self.last_frame_path)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in row:
                continue
            value = row[f.name]
            if value is not None:
                if f.name == "state":
                    value = JobState(value)
                elif f.name == "charge_state":
                    value = ChargeState(value)
                elif f.name == "entry":
                    value = Entry(value)
                elif f.name == "delivered_via":
                    value = DeliveryRoute(value)
                elif f.name.endswith("_at") or f.name in ("period_start", "lease_until"):
                    value = parse_iso(value)
                elif f.name in ("prompt_expansion", "reencoded", "simulated"):
                    value = bool(value)
                elif f.name == "role_ids":
                    value = tuple(json.loads(value))
            values[f.name] = value
        return cls(**values)
