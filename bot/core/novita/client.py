"""The HTTP client: Novita's submit and task-result endpoints with the retry rule of the package docstring."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .. import metrics, redaction
from .errors import (
    DETAIL_LIMIT,
    NovitaAuthError,
    NovitaBadRequest,
    NovitaConnectionError,
    NovitaError,
    NovitaForbidden,
    NovitaMalformedResponse,
    NovitaNoBalance,
    NovitaNotFound,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTimeout,
    error_for_reason,
    safe_reason,
)
from .parsing import elide_images, parse_error_body, parse_retry_after, parse_task_result
from .tasks import RESULT_PATH, GenerationRequest, TaskResult, is_http

log = logging.getLogger("bot.novita")

_REQUEST_ID_HEADERS = ("x-request-id", "x-novita-request-id", "request-id", "x-trace-id", "trace-id")
_EXCERPT_LIMIT = 200


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
        source_url = request.image_source_url if is_http(request.image_source_url) else None
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
        log.debug("novita submit: POST %s body=%s", url, elide_images(body, ("image", "end_image")))
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
                redaction.redact(f"connecting to Novita timed out: {exc}"), operation=operation
            ) from None
        except TimeoutError:
            raise NovitaTimeout(
                f"no answer within {self._timeout.total:g} s", maybe_created=is_submit, operation=operation
            ) from None
        except aiohttp.ClientSSLError as exc:
            # The host answered but TLS failed before the request was sent: no task, and no point retrying.
            raise NovitaConnectionError(
                redaction.redact(f"TLS failure: {exc}"), reached=True, operation=operation
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise NovitaConnectionError(
                redaction.redact(f"could not connect: {exc}"), reached=False, operation=operation
            ) from None
        except aiohttp.InvalidURL as exc:
            raise NovitaError(redaction.redact(f"invalid Novita URL: {exc}"), operation=operation) from None
        except aiohttp.ClientError as exc:
            # Reset, disconnect or broken payload after the request was (at least partly) sent.
            raise NovitaConnectionError(
                redaction.redact(f"connection failed after sending: {type(exc).__name__}: {exc}"),
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
                redaction.redact(
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
                redaction.redact(f"answer has no task_id: {self._excerpt(response.body)}"),
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
                redaction.redact(f"{exc.detail}: {self._excerpt(response.body)}"),
                status=response.status,
                request_id=response.request_id,
                operation="poll",
            ) from None

    def _http_error(self, response: _Response, operation: str) -> NovitaError:
        status = response.status
        parsed = parse_error_body(response.body)
        detail = redaction.clip(parsed.message, DETAIL_LIMIT) or f"HTTP {status} with an empty body"
        reason = redaction.clip(parsed.reason, _EXCERPT_LIMIT) if parsed.reason else None
        common: dict[str, Any] = {
            "status": status,
            "reason": safe_reason(reason) or None,
            "request_id": response.request_id,
            "operation": operation,
        }
        if (known := error_for_reason(reason, detail, common)) is not None:
            return known
        balance_text = f"{reason or ''} {parsed.message}".lower()
        if status == 400:
            shown = common["reason"]
            said = f" ({shown})" if shown and shown != "INVALID_REQUEST_BODY" else ""
            return NovitaBadRequest(
                detail,
                user_message=f"The video service refused the request as invalid{said}. "
                "Check the prompt, settings and image, then try again.",
                **common,
            )
        if status == 401:
            return NovitaAuthError(detail, **common)
        if status == 402 or (status == 403 and ("balance" in balance_text or "insufficient" in balance_text)):
            return NovitaNoBalance(detail, **common)
        if status == 403:
            return NovitaForbidden(detail, **common)
        if status == 404:
            return NovitaNotFound(detail, **common)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = parsed.retry_after
            return NovitaRateLimited(detail, retry_after=retry_after, **common)
        if status >= 500:
            return NovitaServerError(detail, maybe_created=operation == "submit", **common)
        return NovitaError(detail, **common)

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
