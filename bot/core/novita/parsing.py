"""Reading Novita's answers: task results, Retry-After headers and error bodies of any shape. Every number
is held to a sane range where it is parsed."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import redaction
from .errors import NovitaMalformedResponse
from .tasks import MAX_ETA_S, MAX_VIDEO_TTL_S, TaskResult, TaskStatus, VideoOutput


def _to_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _to_int(value: object) -> int | None:
    number = _to_float(value)
    return int(number) if number is not None else None


def _clamped(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(high, max(low, value))


def _parse_status(raw: str) -> TaskStatus:
    normalised = raw.strip().upper()
    try:
        return TaskStatus(normalised)
    except ValueError:
        pass
    if "CANCEL" in normalised:
        return TaskStatus.FAILED
    return TaskStatus.UNKNOWN


def _parse_videos(value: object) -> tuple[VideoOutput, ...]:
    if not isinstance(value, list):
        return ()
    videos: list[VideoOutput] = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        url = item.get("video_url")
        if not isinstance(url, str) or not url.strip():
            continue
        video_type = item.get("video_type")
        videos.append(
            VideoOutput(
                url=url.strip(),
                ttl_seconds=_to_int(_clamped(_to_float(item.get("video_url_ttl")), 0, MAX_VIDEO_TTL_S)),
                video_type=video_type.strip().lower() if isinstance(video_type, str) else "",
            )
        )
    return tuple(videos)


def parse_task_result(payload: object, task_id: str) -> TaskResult:
    """Build a TaskResult from a task-result JSON document (also usable for webhook payloads).

    Raises NovitaMalformedResponse when the document has no `task` object or no string `status`.
    """
    if not isinstance(payload, Mapping):
        raise NovitaMalformedResponse("task-result answer is not a JSON object", operation="poll")
    task = payload.get("task")
    if not isinstance(task, Mapping):
        raise NovitaMalformedResponse("task-result answer has no 'task' object", operation="poll")
    raw_status = task.get("status")
    if not isinstance(raw_status, str):
        raise NovitaMalformedResponse("task-result answer has no 'task.status'", operation="poll")
    reason = task.get("reason")
    eta = _to_float(task.get("eta"))
    progress = _to_float(task.get("progress_percent"))
    returned_id = task.get("task_id")
    return TaskResult(
        task_id=returned_id if isinstance(returned_id, str) and returned_id else task_id,
        status=_parse_status(raw_status),
        raw_status=raw_status,
        reason=redaction.redact(reason if isinstance(reason, str) else "" if reason is None else str(reason)),
        eta_seconds=_clamped(eta, 0.0, MAX_ETA_S),
        progress_percent=_clamped(progress, 0.0, 100.0),
        videos=_parse_videos(payload.get("videos")),
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds (integer or, leniently, decimal) or an HTTP-date."""
    if not value:
        return None
    seconds = _to_float(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _ErrorBody:
    code: int | None = None
    reason: str | None = None
    message: str = ""
    retry_after: float | None = None


def parse_error_body(body: bytes) -> _ErrorBody:
    """Read an error body of any shape: flat {code, reason, message}, nested {error: {...}}, text or HTML."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if not isinstance(data, Mapping):
        return _ErrorBody(message=" ".join(text.split()))
    nested = data.get("error")
    source: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    message = source.get("message") or source.get("msg") or source.get("detail")
    if not message and isinstance(nested, str):
        message = nested
    reason = source.get("reason") or data.get("reason")
    metadata = data.get("metadata")
    retry_after = None
    for holder in (source, data, metadata if isinstance(metadata, Mapping) else {}):
        for key in ("retry_after", "retryAfter", "retry_after_seconds"):
            if retry_after is None and key in holder:
                retry_after = _to_float(holder[key])
    return _ErrorBody(
        code=_to_int(source.get("code")),
        reason=str(reason) if reason else None,
        message=str(message) if message else " ".join(text.split()),
        retry_after=max(0.0, retry_after) if retry_after is not None else None,
    )


def elide_images(body: Mapping[str, Any], image_fields: Sequence[str]) -> dict[str, Any]:
    out = dict(body)
    for name in image_fields:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = f"<{value[:30]}… {len(value)} chars>" if value.startswith("data:") else value
    return out
