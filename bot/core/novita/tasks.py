"""The task model: what a generation request carries, and what a task result says."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .. import video_models

SUBMIT_PATH = "/v3/async/minimax-hailuo-02"
RESULT_PATH = "/v3/async/task-result"
# Every number read from Novita is held to a sane range where it is parsed: an absurd value (eta "1e12")
# must not reach date arithmetic later on.
MAX_ETA_S = 24 * 3600.0
MAX_VIDEO_TTL_S = 30 * 24 * 3600


class TaskStatus(enum.StrEnum):
    QUEUED = "TASK_STATUS_QUEUED"
    PROCESSING = "TASK_STATUS_PROCESSING"
    SUCCEED = "TASK_STATUS_SUCCEED"
    FAILED = "TASK_STATUS_FAILED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class VideoOutput:
    url: str
    ttl_seconds: int | None
    video_type: str


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    status: TaskStatus
    raw_status: str
    reason: str
    eta_seconds: float | None
    progress_percent: float | None
    videos: tuple[VideoOutput, ...]

    @property
    def finished(self) -> bool:
        return self.status in (TaskStatus.SUCCEED, TaskStatus.FAILED)

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCEED

    @property
    def failed(self) -> bool:
        return self.status is TaskStatus.FAILED

    @property
    def video(self) -> VideoOutput | None:
        """The first video, preferring an mp4 one; None when the result carries no video."""
        for video in self.videos:
            if video.video_type == "mp4":
                return video
        return self.videos[0] if self.videos else None


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    duration: int = 6
    resolution: str = "768P"
    prompt_expansion: bool = True
    # Kept out of the repr: a data URI is megabytes of base64 that must not end up in logs.
    image_data_uri: str | None = field(default=None, repr=False)
    model: str = video_models.DEFAULT_MODEL
    end_image_data_uri: str | None = field(default=None, repr=False)  # the last frame (Hailuo-02)
    image_source_url: str | None = field(default=None, repr=False)  # the picture's http(s) origin, if any

    @property
    def has_image(self) -> bool:
        return self.image_data_uri is not None or is_http(self.image_source_url)

    @property
    def endpoint(self) -> str:
        return video_models.get(self.model).endpoint(self.has_image)


def is_http(value: str | None) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))
