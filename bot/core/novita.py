"""Async client for Novita's MiniMax Hailuo endpoints: submit a task, poll its result.

Which endpoint a request goes to, and which fields it may carry, is the model registry's business
(`video_models.py`); every model shares the task-result endpoint.

Two kinds of failure are kept apart: a task that *ran and failed* is a `TaskResult` with status FAILED;
an HTTP call that failed raises a `NovitaError` subclass. Retries follow one rule: polls are retried freely,
a submit only when it provably never reached the server (or got a 429), because a submit that reached the
server may have created a task and a charge (`NovitaError.maybe_created`).
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import logging
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from . import metrics, redaction, video_models
from .errors import UserFacingError
from .i18n import Text, _

log = logging.getLogger("bot.novita")

SUBMIT_PATH = "/v3/async/minimax-hailuo-02"
RESULT_PATH = "/v3/async/task-result"

_REQUEST_ID_HEADERS = ("x-request-id", "x-novita-request-id", "request-id", "x-trace-id", "trace-id")
_DETAIL_LIMIT = 500
_EXCERPT_LIMIT = 200
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
        return self.image_data_uri is not None or _is_http(self.image_source_url)

    @property
    def endpoint(self) -> str:
        return video_models.get(self.model).endpoint(self.has_image)


def _is_http(value: str | None) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


# Errors ---------------------------------------------------------------------------------------------------


class NovitaError(UserFacingError):
    """An HTTP call to Novita failed (as opposed to a task that ran and FAILED, which is a TaskResult).

    `detail` is for moderators and logs (server message or truncated body, never the API key);
    `user_message` is one or two plain sentences for a Discord member (the class's default unless given).
    `maybe_created` is True when a submit may have created a task (and a charge) despite the error.
    `safe_to_resend` says whether the request provably did not start a task, so it may be sent again, and
    `retry_after` how long Novita asked us to wait (None: it did not say), so the runner needs to know no
    subclass.
    """

    default_user_message: ClassVar[Text] = _(
        "Something went wrong talking to the video service. Please try again later."
    )
    #: True for failures that may go away on their own (rate limits, overload, timeouts, bad gateways).
    transient: ClassVar[bool] = False

    def __init__(
        self,
        user_message: Text | None = None,
        detail: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        maybe_created: bool = False,
        operation: str = "request",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.request_id = request_id
        self.maybe_created = maybe_created
        self.operation = operation
        self.retry_after = retry_after
        super().__init__(user_message or self.default_user_message, detail)

    @property
    def safe_to_resend(self) -> bool:
        """The request provably started no task: sending it again cannot pay twice."""
        return False

    def __str__(self) -> str:
        return self._summary()

    def _summary(self) -> str:
        parts = [f"Novita {self.operation} failed"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.reason:
            parts.append(self.reason)
        text = ": ".join(parts)
        if self.detail:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.maybe_created:
            text += " [a task may have been created]"
        return text


class NovitaBadRequest(NovitaError):
    default_user_message = _(
        "The video service refused the request as invalid. "
        "Check the prompt, settings and image, then try again."
    )


class NovitaAuthError(NovitaError):
    default_user_message = _(
        "The video service rejected the bot's API key, so no videos can be made for now. "
        "The moderators have been told."
    )


class NovitaForbidden(NovitaError):
    default_user_message = _(
        "The video service refused access to this model. "
        "The bot's operator needs to check the Novita account."
    )


class NovitaNoBalance(NovitaForbidden):
    default_user_message = _(
        "The server's video account is out of credit, so no videos can be made for now. "
        "The moderators have been told."
    )


class NovitaContentRefused(NovitaBadRequest):
    """Novita's content rules refused the prompt (ILLEGAL_PROMPT) or the image (ILLEGAL_IMAGE_CONTENT)."""

    default_user_message = _("Novita's content rules refused this request. Change it and try again.")


class NovitaAccountProblem(NovitaForbidden):
    """The account needs the operator (API_NOT_ALLOWED, NEED_REAL_NAME_VERIFY, BILLING_AUTH_FAILED)."""

    default_user_message = _(
        "The video service can't be used with the bot's account right now. The moderators have been told."
    )


class NovitaNotFound(NovitaError):
    default_user_message = _("The video service no longer knows this task.")


class NovitaRateLimited(NovitaError):
    default_user_message = _(
        "The video service is receiving too many requests. Please try again in a minute."
    )
    transient = True

    @property
    def safe_to_resend(self) -> bool:  # a 429 is an answer before any work: no task was created
        return not self.maybe_created


class NovitaServerError(NovitaError):
    default_user_message = _(
        "The video service is having trouble right now. Please try again in a few minutes."
    )
    transient = True


class NovitaConnectionError(NovitaError):
    default_user_message = _("The bot could not reach the video service. Please try again in a few minutes.")
    transient = True

    def __init__(
        self, user_message: Text | None = None, detail: str = "", *, reached: bool = True, **kwargs: Any
    ) -> None:
        # `reached` is False only when the request provably never left (connection refused, DNS failure).
        self.reached = reached
        super().__init__(user_message, detail, **kwargs)

    @property
    def safe_to_resend(self) -> bool:
        return not self.reached and not self.maybe_created


class NovitaTimeout(NovitaConnectionError):
    """No answer in time: a connection error like the others (it may or may not have reached Novita)."""

    default_user_message = _("The video service did not answer in time. Please try again in a few minutes.")


class NovitaMalformedResponse(NovitaError):
    default_user_message = _(
        "The video service sent an answer the bot could not read. Please try again later."
    )
    transient = True


# Parsing helpers ------------------------------------------------------------------------------------------


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
        raise NovitaMalformedResponse(detail="task-result answer is not a JSON object", operation="poll")
    task = payload.get("task")
    if not isinstance(task, Mapping):
        raise NovitaMalformedResponse(detail="task-result answer has no 'task' object", operation="poll")
    raw_status = task.get("status")
    if not isinstance(raw_status, str):
        raise NovitaMalformedResponse(detail="task-result answer has no 'task.status'", operation="poll")
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


def _parse_retry_after(value: str | None) -> float | None:
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


def _parse_error_body(body: bytes) -> _ErrorBody:
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


# Novita's documented error reasons that need their own answer, whatever the HTTP status they come with.
_CONTENT_REASONS = {
    "ILLEGAL_PROMPT": _("Novita's content rules refused the prompt. Change the wording and try again."),
    "ILLEGAL_IMAGE_CONTENT": _("Novita's content rules refused the image. Try a different picture."),
}
_BALANCE_REASONS = frozenset({"BILLING_BALANCE_NOT_ENOUGH", "NOT_ENOUGH_BALANCE"})
# What the operator must do, for the moderators and the log (never shown to members as such).
OPERATOR_ACTIONS = {
    "BILLING_BALANCE_NOT_ENOUGH": "top up the Novita account's balance",
    "NOT_ENOUGH_BALANCE": "top up the Novita account's balance",
    "INVALID_API_KEY": "check NOVITA_API_KEY: Novita says the key is invalid (make a new one in Novita's "
    "key management and restart the bot)",
    "MISSING_API_KEY": "set NOVITA_API_KEY and restart the bot",
    "API_NOT_ALLOWED": "enable this model's API for the Novita account (or switch the model off with "
    "/settings models)",
    "NEED_REAL_NAME_VERIFY": "complete the real-name verification of the Novita account",
    "BILLING_AUTH_FAILED": "check the Novita account's billing",
}
_KEY_REASONS = frozenset({"INVALID_API_KEY", "MISSING_API_KEY"})
_ACCOUNT_REASONS = frozenset({"API_NOT_ALLOWED", "NEED_REAL_NAME_VERIFY", "BILLING_AUTH_FAILED"})
_SAFE_REASON = re.compile(r"[^A-Za-z0-9_.:-]+")


def safe_reason(reason: str | None, limit: int = 64) -> str:
    """An error reason from the network, safe to quote anywhere: word characters only, cut to `limit`."""
    return _SAFE_REASON.sub("_", reason or "").strip("_")[:limit]


def _by_reason(reason: str | None, detail: str, common: dict[str, Any]) -> NovitaError | None:
    """The error for a documented `reason` (branching on it, not only on the HTTP status), or None."""
    key = (reason or "").strip().upper()
    action = OPERATOR_ACTIONS.get(key)
    if action:  # first, so the cut to the detail limit never drops the action
        detail = redaction.clip(f"operator: {action} — {detail}", _DETAIL_LIMIT)
    if key in _BALANCE_REASONS:
        return NovitaNoBalance(detail=detail, **common)
    if key in _CONTENT_REASONS:
        return NovitaContentRefused(_CONTENT_REASONS[key], detail, **common)
    if key in _KEY_REASONS:
        return NovitaAuthError(detail=detail, **common)
    if key in _ACCOUNT_REASONS:
        return NovitaAccountProblem(detail=detail, **common)
    return None


def _elide_images(body: Mapping[str, Any], image_fields: Sequence[str]) -> dict[str, Any]:
    out = dict(body)
    for name in image_fields:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = f"<{value[:30]}… {len(value)} chars>" if value.startswith("data:") else value
    return out


# Client ---------------------------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int
    body: bytes
    headers: Mapping[str, str]
    request_id: str | None


class NovitaClient:
    """Novita's Hailuo-02 submit and task-result endpoints, over a session the application owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        image_fields: Sequence[str] = ("image",),
        request_timeout: float = 30.0,
        poll_retries: int = 4,
        submit_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        retry_after_cap: float = 60.0,
    ) -> None:
        if not image_fields:
            raise ValueError("image_fields must name at least one field")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        redaction.register(api_key)
        self._image_fields = tuple(image_fields)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._poll_retries = max(0, poll_retries)
        self._submit_retries = max(0, submit_retries)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_cap = retry_after_cap

    def __repr__(self) -> str:
        return f"NovitaClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    # Public API -----------------------------------------------------------------------------------------

    def build_submit_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "duration": request.duration,
            "resolution": request.resolution,
            "enable_prompt_expansion": request.prompt_expansion,
        }
        # `image` (Novita's current name) takes a URL or a data URI: it gets the normalised picture.
        # `image_url` (the seed's older name) takes an http(s) URL only: it gets the source's link, if any.
        source_url = request.image_source_url if _is_http(request.image_source_url) else None
        if "image" in self._image_fields or source_url is None:
            image = request.image_data_uri or source_url
            if image is not None:
                body["image"] = image
        if "image_url" in self._image_fields and source_url is not None:
            body["image_url"] = source_url
        if request.end_image_data_uri is not None:
            body["end_image"] = request.end_image_data_uri
        return body

    async def submit(self, request: GenerationRequest) -> str:
        """Create a task and return its id. See the module docstring for what is retried."""
        body = self.build_submit_body(request)
        data = json.dumps(body).encode()
        url = self._base_url + request.endpoint
        log.debug("novita submit: POST %s body=%s", url, _elide_images(body, ("image", "end_image")))
        attempt = 0
        while True:
            try:
                response = await self._exchange("POST", url, data=data, operation="submit")
            except NovitaConnectionError as exc:
                if exc.reached or attempt >= self._submit_retries:
                    raise
                delay = self._backoff(attempt)
                self._log_retry("submit", exc, delay, attempt)
            else:
                if 200 <= response.status < 300:
                    return self._parse_submit(response)
                error = self._http_error(response, "submit")
                if not isinstance(error, NovitaRateLimited) or attempt >= self._submit_retries:
                    raise error
                delay = self._retry_delay(error, attempt)
                self._log_retry("submit", error, delay, attempt)
            await asyncio.sleep(delay)
            attempt += 1

    async def get_result(self, task_id: str) -> TaskResult:
        """Fetch a task's current state. Transient failures are retried up to `poll_retries` times."""
        if not task_id:
            raise ValueError("task_id must not be empty")
        url = self._base_url + RESULT_PATH
        attempt = 0
        while True:
            try:
                response = await self._exchange("GET", url, params={"task_id": task_id}, operation="poll")
                if not 200 <= response.status < 300:
                    raise self._http_error(response, "poll")
                result = self._parse_result(response, task_id)
            except NovitaError as exc:
                if not exc.transient or attempt >= self._poll_retries:
                    raise
                delay = self._retry_delay(exc, attempt)
                self._log_retry("poll", exc, delay, attempt)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            log.debug(
                "novita poll: task %s %s progress=%s eta=%s videos=%d",
                result.task_id,
                result.raw_status,
                result.progress_percent,
                result.eta_seconds,
                len(result.videos),
            )
            return result

    # Transport ------------------------------------------------------------------------------------------

    @metrics.count_novita_requests
    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> _Response:
        """Send one request and read the whole answer; map transport failures to NovitaError."""
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        is_submit = operation == "submit"
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                request_id = next((resp.headers[h] for h in _REQUEST_ID_HEADERS if h in resp.headers), None)
                return _Response(resp.status, body, resp.headers, request_id)
        except aiohttp.ConnectionTimeoutError as exc:
            # Timed out before a connection existed (including waiting for a pooled one): nothing was sent.
            raise NovitaTimeout(
                detail=redaction.redact(f"connecting to Novita timed out: {exc}"),
                reached=False,
                operation=operation,
            ) from None
        except TimeoutError:
            raise NovitaTimeout(
                detail=f"no answer within {self._timeout.total:g} s",
                maybe_created=is_submit,
                operation=operation,
            ) from None
        except aiohttp.ClientSSLError as exc:
            # The host answered but TLS failed before the request was sent: no task, and no point retrying.
            raise NovitaConnectionError(
                detail=redaction.redact(f"TLS failure: {exc}"), reached=True, operation=operation
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise NovitaConnectionError(
                detail=redaction.redact(f"could not connect: {exc}"), reached=False, operation=operation
            ) from None
        except aiohttp.InvalidURL as exc:
            raise NovitaError(
                detail=redaction.redact(f"invalid Novita URL: {exc}"), operation=operation
            ) from None
        except aiohttp.ClientError as exc:
            # Reset, disconnect or broken payload after the request was (at least partly) sent.
            raise NovitaConnectionError(
                detail=redaction.redact(f"connection failed after sending: {type(exc).__name__}: {exc}"),
                reached=True,
                maybe_created=is_submit,
                operation=operation,
            ) from None

    # Answers --------------------------------------------------------------------------------------------

    def _parse_json(self, response: _Response, operation: str) -> object:
        try:
            return json.loads(response.body)
        except ValueError:
            raise NovitaMalformedResponse(
                detail=redaction.redact(
                    f"invalid JSON ({len(response.body)} bytes): {self._excerpt(response.body)}"
                ),
                status=response.status,
                request_id=response.request_id,
                maybe_created=operation == "submit",
                operation=operation,
            ) from None

    def _parse_submit(self, response: _Response) -> str:
        payload = self._parse_json(response, "submit")
        task_id = payload.get("task_id") if isinstance(payload, Mapping) else None
        if not isinstance(task_id, str) or not task_id.strip():
            raise NovitaMalformedResponse(
                detail=redaction.redact(f"answer has no task_id: {self._excerpt(response.body)}"),
                status=response.status,
                request_id=response.request_id,
                maybe_created=True,
                operation="submit",
            )
        log.info("novita submit accepted: task %s (request id %s)", task_id, response.request_id)
        return task_id.strip()

    def _parse_result(self, response: _Response, task_id: str) -> TaskResult:
        payload = self._parse_json(response, "poll")
        try:
            return parse_task_result(payload, task_id)
        except NovitaMalformedResponse as exc:
            raise NovitaMalformedResponse(
                detail=redaction.redact(f"{exc.detail}: {self._excerpt(response.body)}"),
                status=response.status,
                request_id=response.request_id,
                operation="poll",
            ) from None

    def _http_error(self, response: _Response, operation: str) -> NovitaError:
        status = response.status
        parsed = _parse_error_body(response.body)
        detail = redaction.clip(parsed.message, _DETAIL_LIMIT) or f"HTTP {status} with an empty body"
        reason = redaction.clip(parsed.reason, _EXCERPT_LIMIT) if parsed.reason else None
        common: dict[str, Any] = {
            "status": status,
            "reason": safe_reason(reason) or None,
            "request_id": response.request_id,
            "operation": operation,
        }
        if (known := _by_reason(reason, detail, common)) is not None:
            return known
        balance_text = f"{reason or ''} {parsed.message}".lower()
        if status == 400:
            shown = common["reason"]
            said = f" ({shown})" if shown and shown != "INVALID_REQUEST_BODY" else ""
            if said:
                refused = _(
                    "The video service refused the request as invalid ({reason}). Check the prompt, settings "
                    "and image, then try again.",
                    reason=shown,
                )
                return NovitaBadRequest(refused, detail, **common)
            return NovitaBadRequest(detail=detail, **common)
        if status == 401:
            return NovitaAuthError(detail=detail, **common)
        if status == 402 or (status == 403 and ("balance" in balance_text or "insufficient" in balance_text)):
            return NovitaNoBalance(detail=detail, **common)
        if status == 403:
            return NovitaForbidden(detail=detail, **common)
        if status == 404:
            return NovitaNotFound(detail=detail, **common)
        if status == 429:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = parsed.retry_after
            return NovitaRateLimited(detail=detail, retry_after=retry_after, **common)
        if status >= 500:
            return NovitaServerError(detail=detail, maybe_created=operation == "submit", **common)
        return NovitaError(detail=detail, **common)

    # Retry helpers --------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0.0, min(self._backoff_cap, self._backoff_base * 2**attempt))

    def _retry_delay(self, error: NovitaError, attempt: int) -> float:
        if isinstance(error, NovitaRateLimited) and error.retry_after is not None:
            return min(error.retry_after, self._retry_after_cap)
        return self._backoff(attempt)

    def _log_retry(self, operation: str, error: NovitaError, delay: float, attempt: int) -> None:
        limit = self._submit_retries if operation == "submit" else self._poll_retries
        log.info(
            "novita %s retry %d/%d in %.2f s after %s: %s",
            operation,
            attempt + 1,
            limit,
            delay,
            type(error).__name__,
            error.detail,
        )

    @staticmethod
    def _excerpt(body: bytes, limit: int = _EXCERPT_LIMIT) -> str:
        """The body on one line, redacted and then cut (the order matters: see bot/core/redaction.py)."""
        return redaction.clip(" ".join(body.decode("utf-8", errors="replace").split()), limit)
