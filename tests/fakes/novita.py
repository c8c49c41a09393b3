"""A loopback fake of Novita's asynchronous MiniMax Hailuo API (Hailuo-02, 2.3 and 2.3 Fast), faithful to
`docs/novita-api.md`.

It refuses what the real service refuses (auth, content type, every documented parameter and image limit,
which image fields each endpoint takes), records every submit body per endpoint (`bodies`),
runs each task along a scripted `Timeline` computed from timestamps (so thousands of tasks in flight cost
nothing between polls), serves real MP4 files at expiring links, and injects faults on demand.

    async with FakeNovita() as fake:                  # in the test's event loop
        fake.script(Timeline(queued_s=0.1, processing_s=0.5))
        fake.inject("submit", "status", status=429, retry_after=1)

    with FakeNovita().threaded() as fake:             # in its own thread (sync tests, subprocesses, bench)
        ...

    python -m tests.fakes.novita --port 8765 --time-scale 0.1   # by hand, until Ctrl-C

State (`submits`, `tasks`, `requests`) is mutated only by the server's loop; other threads may read it and
call `script`, `inject` and set attributes such as `no_balance` or `time_scale`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import io
import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from PIL import Image

from tests.fakes.server import LoopbackServer
from tests.fakes.videos import sample_video, sized_video, video_from_image

SUBMIT_PATH = "/v3/async/minimax-hailuo-02"
RESULT_PATH = "/v3/async/task-result"
DEFAULT_API_KEY = "test-novita-key"
TASK_TYPE = "MINIMAX_HAILUO_02"


@dataclass(frozen=True)
class EndpointSpec:
    """What one submit endpoint accepts: the first frame (`image`) and the last (`end_image`)."""

    task_type: str
    image: Literal["optional", "required", "refused"]
    end_image: bool


# Written from Novita's pages, independently of the bot's registry, so a wrong registry entry fails.
ENDPOINTS = {
    "minimax-hailuo-02": EndpointSpec(TASK_TYPE, "optional", end_image=True),
    "minimax-hailuo-2.3-t2v": EndpointSpec("MINIMAX_HAILUO_2_3_T2V", "refused", end_image=False),
    "minimax-hailuo-2.3-i2v": EndpointSpec("MINIMAX_HAILUO_2_3_I2V", "required", end_image=False),
    "minimax-hailuo-2.3-fast-i2v": EndpointSpec("MINIMAX_HAILUO_2_3_FAST_I2V", "required", end_image=False),
}
SUBMIT_PATHS = {f"/v3/async/{name}": name for name in ENDPOINTS}

IMAGE_FIELDS = ("image_url", "image")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MIN_SHORT_SIDE = 300  # exclusive: the short side must be over 300 px
_DATA_URI_RE = re.compile(r"data:image/(jpeg|png|webp);base64,(.*)", re.IGNORECASE | re.DOTALL)
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}

Endpoint = Literal["submit", "poll", "video"]
FaultKind = Literal["status", "respond", "hang", "malformed", "reset"]
_FAULT_KINDS = ("status", "respond", "hang", "malformed", "reset")
# Whether a submit fault lets the task be created first (the "maybe created" cases), unless told otherwise.
_CREATES_BY_DEFAULT = {"status": False, "respond": False, "hang": True, "malformed": True, "reset": False}

_DEFAULT_REASONS = {
    400: "INVALID_REQUEST_BODY",
    401: "INVALID_API_KEY",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
_DEFAULT_MESSAGES = {
    "NOT_ENOUGH_BALANCE": "Not enough balance. Please top up your account to continue.",
    "BILLING_BALANCE_NOT_ENOUGH": "Insufficient balance, please recharge your account.",
    "ILLEGAL_PROMPT": "The prompt contains content that is not allowed.",
    "ILLEGAL_IMAGE_CONTENT": "The image contains content that is not allowed.",
    "INVALID_API_KEY": "Invalid API key.",
    "API_NOT_ALLOWED": "This API is not enabled for your account.",
    "NEED_REAL_NAME_VERIFY": "Real-name verification is required to use this API.",
    "RATE_LIMIT_EXCEEDED": "Rate limit exceeded, please slow down.",
    "SERVICE_UNAVAILABLE": "Service is overloaded, please retry later.",
}

_REQUEST_ID = web.RequestKey("request_id", str)
_LOG_ENTRY = web.RequestKey("log_entry", dict)
_RESET = web.RequestKey("reset", bool)
_VIDEO_PATH = web.RequestKey("video_path", Path)

_VIDEO_LOCK = threading.Lock()  # the video helpers cache with functools / file checks, not thread-safe
_Image = tuple[bytes, str, tuple[int, int]]  # decoded bytes, Pillow format, size


@dataclass
class Timeline:
    """How one task unfolds, in seconds from submit (multiplied by the fake's `time_scale`)."""

    queued_s: float = 2.0
    processing_s: float = 8.0
    outcome: Literal["succeed", "fail", "never"] = "succeed"
    reason: str = "The content may violate our policies"
    eta_noise: float = 0.0
    video: Literal["sample", "from_image"] | Path = "sample"
    video_bytes_target: int | None = None
    no_videos: bool = False
    video_status: int = 200
    video_not_mp4: bool = False
    gif_first: bool = False  # list a GIF preview before the MP4 in `videos[]` (the documents allow both)
    ttl_as_int: bool = False  # `video_url_ttl` as an integer (Novita's Python SDK types it so) not a string


@dataclass
class FakeTask:
    task_id: str
    body: dict[str, Any]
    timeline: Timeline
    created_at: float  # time.monotonic()
    scale: float
    image: bytes | None = None  # decoded first-frame bytes when sent as a data URI
    image_format: str | None = None  # "JPEG" | "PNG" | "WEBP"
    image_size: tuple[int, int] | None = None
    image_url: str | None = None  # when sent as a plain http(s) URL (never fetched)
    endpoint: str = "minimax-hailuo-02"
    end_image: bytes | None = None  # decoded last frame, when sent as a data URI
    polls: int = 0
    video_downloads: int = 0
    gif_downloads: int = 0
    video_path: Path | None = None
    _video_job: asyncio.Future[Path] | None = field(default=None, repr=False)

    @property
    def queued_until(self) -> float:
        return self.created_at + self.timeline.queued_s * self.scale

    @property
    def finishes_at(self) -> float:
        return self.queued_until + self.timeline.processing_s * self.scale

    def status_at(self, now: float) -> str:
        if now < self.queued_until:
            return "TASK_STATUS_QUEUED"
        if now < self.finishes_at or self.timeline.outcome == "never":
            return "TASK_STATUS_PROCESSING"
        return "TASK_STATUS_SUCCEED" if self.timeline.outcome == "succeed" else "TASK_STATUS_FAILED"

    @property
    def status(self) -> str:
        return self.status_at(time.monotonic())


@dataclass
class Fault:
    endpoint: Endpoint
    kind: FaultKind
    remaining: int
    params: dict[str, Any]


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _error_response(status: int, reason: str, message: str, **metadata: Any) -> web.Response:
    body = {"code": status, "reason": reason, "message": message, "metadata": metadata}
    return web.json_response(body, status=status)


def _xml_error(status: int, code: str, message: str) -> web.Response:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=text, content_type="application/xml")


def check_image(data: bytes, declared: str) -> tuple[str, tuple[int, int]]:
    """Apply MiniMax's first-frame limits to decoded bytes; return (Pillow format, size) or raise _Refusal."""

    def refuse(message: str) -> _Refusal:
        return _Refusal(400, "INVALID_IMAGE", message)

    if len(data) >= MAX_IMAGE_BYTES:
        raise refuse(f"image is {len(data)} bytes; it must be under 20 MB")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            size = img.size
            img.load()
    except Exception as exc:  # Pillow raises many types for bad data; all mean "not a usable image"
        raise refuse(f"image could not be decoded ({type(exc).__name__})") from None
    if fmt not in ("JPEG", "PNG", "WEBP"):
        raise refuse(f"image format {fmt or 'unknown'} is not supported; use JPG, PNG or WebP")
    if _PIL_FORMATS[declared.lower()] != fmt:
        raise refuse(f"data URI says image/{declared.lower()} but the data is {fmt}")
    width, height = size
    if min(width, height) <= MIN_SHORT_SIDE:
        raise refuse(f"image is {width}x{height}; its short side must be over {MIN_SHORT_SIDE} px")
    if 5 * width < 2 * height or 2 * width > 5 * height:
        raise refuse(f"image is {width}x{height}; its aspect ratio must be between 2:5 and 5:2")
    return fmt, size


class FakeNovita:
    """The fake service. See the module docstring; `inject` and `script` describe the test controls."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        time_scale: float = 1.0,
        default_timeline: Timeline | None = None,
        video_ttl_s: float = 3600.0,
        seed: int | None = None,
        request_log_limit: int = 100_000,
    ) -> None:
        self.api_key = api_key
        self.time_scale = time_scale
        self.default_timeline = default_timeline or Timeline()
        self.video_ttl_s = video_ttl_s
        self.no_balance = False
        self.no_balance_reason = "NOT_ENOUGH_BALANCE"  # or BILLING_BALANCE_NOT_ENOUGH (answered with 400)
        self.submits: list[dict[str, Any]] = []
        self.tasks: dict[str, FakeTask] = {}
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=request_log_limit)
        self._timelines: collections.deque[Timeline] = collections.deque()
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._unknown_polls: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(seed)
        # Interning: a bench that sends one image 1,000 times keeps one copy and checks it once.
        self._interned: dict[str, str] = {}
        self._image_checks: dict[str, tuple[bytes, str, tuple[int, int]] | _Refusal] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._closing = asyncio.Event()  # ends injected hangs at shutdown, so stopping is quick
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        for path in SUBMIT_PATHS:
            self.app.router.add_post(path, self._handle_submit)
        self.app.router.add_get(RESULT_PATH, self._handle_poll)
        self.app.router.add_get("/videos/{name}", self._handle_video)
        self.server = LoopbackServer(self.app)
        self._started = False

    # Lifecycle ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._started:
            raise RuntimeError("FakeNovita is not running; use `async with` or `.threaded()`")
        return self.server.url

    async def __aenter__(self) -> FakeNovita:
        await self.server.start()
        self._started = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        for job in self._background:
            job.cancel()
        await self.server.stop()
        self._started = False
        self._closing = asyncio.Event()

    def start_in_thread(self) -> str:
        url = self.server.start_in_thread()
        self._started = True
        return url

    def stop_thread(self) -> None:
        if self.server.loop is not None:
            self.server.loop.call_soon_threadsafe(self._closing.set)
        self.server.stop_thread()
        self._started = False
        self._closing = asyncio.Event()

    @contextlib.contextmanager
    def threaded(self) -> Iterator[FakeNovita]:
        """Run the fake in its own thread and event loop for the duration of the `with` block."""
        self.start_in_thread()
        try:
            yield self
        finally:
            self.stop_thread()

    # Test controls --------------------------------------------------------------------------------------

    def script(self, *timelines: Timeline) -> None:
        """Queue timelines for the next created tasks, in order; then `default_timeline` applies again."""
        self._timelines.extend(timelines)

    def inject(self, endpoint: Endpoint, kind: FaultKind, times: int = 1, **params: Any) -> Fault:
        """Make the next `times` requests to `endpoint` misbehave. Faults are consumed in injection order.

        kinds and params:
        - "status": answer `status` (required) with a flat error body; `reason`, `message`, `retry_after`
          (sent as a Retry-After header, or inside the body's metadata with `retry_after_in_body=True`),
          `body` + `content_type` to send a raw body instead (HTML, text).
        - "respond": answer `body` (dict/list sent as JSON, str as is) with `status` (default 200),
          `content_type`, `headers` — for odd but well-formed answers.
        - "hang": wait `seconds` (default 30) before answering, so the client times out.
        - "malformed": a 200 whose JSON (video: MP4) is cut in half.
        - "reset": close the connection without an answer (video: after `after_bytes` of the file, if given).
        - submit only, `create_task`: whether the task is created first (defaults: True for hang and
          malformed, False otherwise). poll/video only, `task_id`: only requests for that task match.
        """
        if endpoint not in ("submit", "poll", "video"):
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == "status" and "status" not in params:
            raise ValueError("a 'status' fault needs status=...")
        fault = Fault(endpoint, kind, times, params)
        with self._faults_lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def poll_count(self, task_id: str) -> int:
        """How many task-result requests named this task id (faulted or refused ones included)."""
        task = self.tasks.get(task_id)
        return task.polls if task is not None else self._unknown_polls[task_id]

    @property
    def created_submits(self) -> list[dict[str, Any]]:
        return [s for s in self.submits if s["created"]]

    @property
    def bodies(self) -> dict[str, list[dict[str, Any]]]:
        """Every submit body received, by endpoint name (`minimax-hailuo-2.3-i2v`), in arrival order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.submits:
            if isinstance(record["body"], dict):
                out.setdefault(record["endpoint"], []).append(record["body"])
        return out

    def video_url(self, task_id: str) -> str:
        return f"{self.base_url}/videos/{task_id}.mp4"

    # Plumbing -------------------------------------------------------------------------------------------

    def _take_fault(self, endpoint: Endpoint, task_id: str | None = None) -> Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                wanted = fault.params.get("task_id")
                if fault.endpoint != endpoint or (wanted is not None and wanted != task_id):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        request_id = uuid.uuid4().hex
        request[_REQUEST_ID] = request_id
        endpoint = "submit" if request.path in SUBMIT_PATHS else {RESULT_PATH: "poll"}.get(request.path)
        if endpoint is None:
            endpoint = "video" if request.path.startswith("/videos/") else "other"
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "endpoint": endpoint,
            "request_id": request_id,
            "status": None,
            "fault": None,
        }
        self.requests.append(entry)
        request[_LOG_ENTRY] = entry
        response = await handler(request)
        if request.get(_RESET):
            entry["fault"] = "reset"
            return response
        entry["status"] = response.status
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        return response

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise _Refusal(401, "INVALID_API_KEY", "Missing Authorization header; use 'Bearer <API key>'.")
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            raise _Refusal(401, "INVALID_API_KEY", "Invalid API key.")

    async def _hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _reset(self, request: web.Request) -> web.Response:
        request[_RESET] = True
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)

    async def _apply_fault(
        self,
        request: web.Request,
        fault: Fault,
        normal: Callable[[], Awaitable[web.StreamResponse]],
        *,
        create_first: bool,
    ) -> web.StreamResponse:
        """Answer with `fault`. `normal` produces the real answer (creating the submit's task, if any)."""
        request[_LOG_ENTRY]["fault"] = fault.kind
        params = fault.params
        if fault.kind == "hang":
            if create_first:
                response = await normal()
                await self._hang(params.get("seconds", 30.0))
                return response
            await self._hang(params.get("seconds", 30.0))
            if fault.endpoint == "submit":
                return _error_response(504, "GATEWAY_TIMEOUT", "Upstream timed out.")
            return await normal()
        if fault.kind == "malformed":
            if fault.endpoint == "submit" and not create_first:
                text = json.dumps({"task_id": uuid.uuid4().hex})
            else:
                real = await normal()
                if isinstance(real, web.FileResponse):
                    data = await asyncio.to_thread(request[_VIDEO_PATH].read_bytes)
                    return web.Response(body=data[: len(data) // 2], content_type="video/mp4")
                text = real.text if isinstance(real, web.Response) and real.text else "{}"
            return web.Response(text=text[: max(1, len(text) // 2)], content_type="application/json")
        if create_first:
            await normal()
        if fault.kind == "reset":
            after = params.get("after_bytes")
            if fault.endpoint == "video" and after:
                return await self._stream_then_reset(request, normal, int(after))
            return self._reset(request)
        if fault.kind == "respond":
            body = params.get("body", "")
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(
                status=params.get("status", 200),
                text=text,
                content_type=params.get("content_type", "application/json"),
                headers=params.get("headers"),
            )
        status = int(params["status"])
        headers = dict(params.get("headers") or {})
        if "body" in params:
            return web.Response(
                status=status,
                text=str(params["body"]),
                content_type=params.get("content_type", "text/plain"),
                headers=headers,
            )
        reason = params.get("reason") or _DEFAULT_REASONS.get(status, "ERROR")
        message = params.get("message") or _DEFAULT_MESSAGES.get(reason, f"Injected HTTP {status}.")
        metadata: dict[str, Any] = {}
        retry_after = params.get("retry_after")
        if retry_after is not None:
            if params.get("retry_after_in_body"):
                metadata["retry_after"] = retry_after
            else:
                headers["Retry-After"] = str(retry_after)
        response = _error_response(status, reason, message, **metadata)
        response.headers.update(headers)
        return response

    async def _stream_then_reset(
        self, request: web.Request, normal: Callable[[], Awaitable[web.StreamResponse]], after: int
    ) -> web.StreamResponse:
        real = await normal()
        if not isinstance(real, web.FileResponse):
            return real
        path: Path = request[_VIDEO_PATH]
        size = path.stat().st_size
        response = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(size)})
        response.headers["X-Request-Id"] = request[_REQUEST_ID]
        await response.prepare(request)
        with path.open("rb") as fh:
            await response.write(fh.read(min(after, size - 1)))
        request[_RESET] = True
        if request.transport is not None:
            request.transport.abort()
        return response

    # Submit ---------------------------------------------------------------------------------------------

    async def _handle_submit(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        record: dict[str, Any] = {
            "time": time.time(),
            "request_id": request[_REQUEST_ID],
            "endpoint": SUBMIT_PATHS[request.path],
            "body": None,
            "created": False,
            "task_id": None,
            "status": None,
            "error": None,
            "fault": None,
        }
        self.submits.append(record)
        fault = self._take_fault("submit")

        async def normal() -> web.StreamResponse:
            try:
                task = await self._create_task(request, raw, record)
            except _Refusal as refusal:
                record["error"] = refusal.message
                return _error_response(refusal.status, refusal.reason, refusal.message)
            return web.json_response({"task_id": task.task_id})

        if fault is None:
            response = await normal()
        else:
            record["fault"] = fault.kind
            create = bool(fault.params.get("create_task", _CREATES_BY_DEFAULT[fault.kind]))
            if not create:
                self._parse_submit_body(request, raw, record, check=False)
            response = await self._apply_fault(request, fault, normal, create_first=create)
        record["status"] = None if request.get(_RESET) else response.status
        return response

    def _parse_submit_body(
        self, request: web.Request, raw: bytes, record: dict[str, Any], *, check: bool = True
    ) -> dict[str, Any]:
        """Record the body (data URIs interned); with `check`, refuse like the real front door would."""
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = None
            record["body"] = raw.decode("utf-8", errors="replace")
        else:
            if isinstance(body, dict):
                for name in (*IMAGE_FIELDS, "end_image"):
                    if isinstance(body.get(name), str):
                        body[name] = self._interned.setdefault(body[name], body[name])
            record["body"] = body
        if check:
            self._check_auth(request)
            if request.content_type != "application/json":
                raise _Refusal(400, "INVALID_REQUEST_BODY", "Content-Type must be application/json.")
            if body is None:
                raise _Refusal(400, "INVALID_REQUEST_BODY", "Request body is not valid JSON.")
            if not isinstance(body, dict):
                raise _Refusal(400, "INVALID_REQUEST_BODY", "Request body must be a JSON object.")
        return body if isinstance(body, dict) else {}

    async def _create_task(self, request: web.Request, raw: bytes, record: dict[str, Any]) -> FakeTask:
        body = self._parse_submit_body(request, raw, record)
        if self.no_balance:
            reason = self.no_balance_reason
            raise _Refusal(400 if reason.startswith("BILLING") else 403, reason, _DEFAULT_MESSAGES[reason])
        endpoint = record["endpoint"]
        image, end_image = await self._validate(body, ENDPOINTS[endpoint])
        timeline = self._timelines.popleft() if self._timelines else self.default_timeline
        task = FakeTask(
            task_id=str(uuid.uuid4()),
            body=body,
            timeline=timeline,
            created_at=time.monotonic(),
            scale=self.time_scale,
            endpoint=endpoint,
        )
        if isinstance(end_image, tuple):
            task.end_image = end_image[0]
        if isinstance(image, tuple):
            task.image, task.image_format, task.image_size = image
        elif isinstance(image, str):
            task.image_url = image
        self.tasks[task.task_id] = task
        record["created"] = True
        record["task_id"] = task.task_id
        if timeline.outcome == "succeed" and not timeline.no_videos and timeline.video_status == 200:
            # Encode the video now, so the first download is as quick as the real CDN's.
            job = asyncio.ensure_future(self._resolve_video(task))
            task._video_job = job
            self._background.add(job)
            job.add_done_callback(self._background.discard)
        return task

    async def _validate(
        self, body: dict[str, Any], spec: EndpointSpec
    ) -> tuple[_Image | str | None, _Image | str | None]:
        """Check a submit body like the real service; return the first and last frame (decoded, a URL,
        or None)."""

        def refuse(message: str) -> _Refusal:
            return _Refusal(400, "INVALID_REQUEST_BODY", message)

        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise refuse("prompt is required and must be a string.")
        if not 1 <= len(prompt) <= 2000:
            raise refuse(f"prompt must be 1 to 2000 characters long (got {len(prompt)}).")
        duration = body.get("duration", 6)
        if isinstance(duration, bool) or not isinstance(duration, int) or duration not in (6, 10):
            raise refuse(f"duration must be 6 or 10 (got {duration!r}).")
        resolution = body.get("resolution", "768P")
        if resolution not in ("768P", "1080P"):
            raise refuse(f"resolution must be 768P or 1080P (got {resolution!r}).")
        if resolution == "1080P" and duration != 6:
            raise refuse("1080P is only available for 6-second videos; use 768P for 10 seconds.")
        for flag in ("enable_prompt_expansion", "fast_pretreatment"):
            if flag in body and not isinstance(body[flag], bool):
                raise refuse(f"{flag} must be a boolean.")
        # `image_url` is the older name: an http(s) URL only, never a data URI.
        image_url = body.get("image_url")
        if image_url is not None and (
            not isinstance(image_url, str) or not image_url.startswith(("http://", "https://"))
        ):
            raise refuse("image_url must be an http(s) URL; send a data URI in image instead.")
        first_value = body.get("image") if body.get("image") is not None else image_url
        if spec.image == "required" and first_value is None:
            raise refuse("image is required for this model.")
        if spec.image == "refused" and first_value is not None:
            raise refuse("this endpoint is text to video and takes no image; use the i2v endpoint.")
        end_value = body.get("end_image")
        if end_value is not None and not spec.end_image:
            raise refuse("end_image is not supported by this model.")
        if end_value is not None and first_value is None:
            raise refuse("end_image needs image (the first frame).")
        end = await self._check_image_value("end_image", end_value) if end_value is not None else None
        first = await self._check_image_value("image", first_value) if first_value is not None else None
        return first, end

    async def _check_image_value(self, name: str, value: object) -> _Image | str:
        if not isinstance(value, str) or not value:
            raise _Refusal(400, "INVALID_REQUEST_BODY", f"{name} must be a non-empty string.")
        if value.startswith(("http://", "https://")):
            if not urlsplit(value).netloc:
                raise _Refusal(400, "INVALID_IMAGE", f"{name} is not a valid URL.")
            return value  # the real service would fetch it; the fake never leaves loopback
        cached = self._image_checks.get(value)
        if cached is None:
            cached = await asyncio.to_thread(self._decode_image, name, value)
            self._image_checks[value] = cached
        if isinstance(cached, _Refusal):
            raise cached
        return cached

    def _decode_image(self, name: str, value: str) -> tuple[bytes, str, tuple[int, int]] | _Refusal:
        match = _DATA_URI_RE.fullmatch(value)
        if match is None:
            return _Refusal(
                400,
                "INVALID_IMAGE",
                f"{name} must be an http(s) URL or a data:image/(jpeg|png|webp);base64 data URI.",
            )
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            return _Refusal(400, "INVALID_IMAGE", f"{name} data URI is not valid base64.")
        try:
            fmt, size = check_image(data, match.group(1))
        except _Refusal as refusal:
            message = refusal.message if name == "image" else f"{name}: {refusal.message}"
            return _Refusal(refusal.status, refusal.reason, message)
        return data, fmt, size

    # Poll -----------------------------------------------------------------------------------------------

    async def _handle_poll(self, request: web.Request) -> web.StreamResponse:
        task_id = request.query.get("task_id", "")
        task = self.tasks.get(task_id)
        if task is not None:
            task.polls += 1
        else:
            self._unknown_polls[task_id] += 1

        async def normal() -> web.StreamResponse:
            try:
                self._check_auth(request)
            except _Refusal as refusal:
                return _error_response(refusal.status, refusal.reason, refusal.message)
            if not task_id:
                return _error_response(400, "INVALID_REQUEST_BODY", "task_id is required.")
            if task is None:
                return _error_response(404, "TASK_NOT_FOUND", f"Task {task_id} not found.")
            return web.json_response(self.result_json(task))

        fault = self._take_fault("poll", task_id)
        if fault is None:
            return await normal()
        return await self._apply_fault(request, fault, normal, create_first=False)

    def result_json(self, task: FakeTask, now: float | None = None) -> dict[str, Any]:
        """The task-result document for `task` at monotonic time `now`, shaped exactly like the seed's."""
        now = time.monotonic() if now is None else now
        status = task.status_at(now)
        timeline = task.timeline
        noise = 1.0
        if timeline.eta_noise:
            noise = self._rng.uniform(1 - timeline.eta_noise, 1 + timeline.eta_noise)
        remaining = max(0.0, task.finishes_at - now)
        reason = ""
        videos: list[dict[str, str]] = []
        if status == "TASK_STATUS_QUEUED":
            progress, eta = 0, math.ceil(remaining * noise)
        elif status == "TASK_STATUS_PROCESSING":
            span = max(task.finishes_at - task.queued_until, 1e-9)
            progress = min(99, int(99 * (now - task.queued_until) / span))
            eta = max(1, math.ceil(remaining * noise))
        elif status == "TASK_STATUS_SUCCEED":
            progress, eta = 100, 0
            if not timeline.no_videos:
                ttl = math.ceil(self.video_ttl_s * task.scale)
                if timeline.gif_first:
                    gif_url = self.video_url(task.task_id).removesuffix(".mp4") + ".gif"
                    videos.append({"video_url": gif_url, "video_url_ttl": str(ttl), "video_type": "gif"})
                videos.append(
                    {
                        "video_url": self.video_url(task.task_id),
                        "video_url_ttl": ttl if timeline.ttl_as_int else str(ttl),  # type: ignore[dict-item]
                        "video_type": "mp4",
                    }
                )
        else:
            progress, eta, reason = 0, 0, timeline.reason
        return {
            "task": {
                "task_id": task.task_id,
                "task_type": ENDPOINTS[task.endpoint].task_type,
                "status": status,
                "reason": reason,
                "eta": eta,
                "progress_percent": progress,
            },
            "images": [],
            "videos": videos,
        }

    # Videos ---------------------------------------------------------------------------------------------

    async def _resolve_video(self, task: FakeTask) -> Path:
        timeline = task.timeline

        def build() -> Path:
            with _VIDEO_LOCK:
                if timeline.video_bytes_target:
                    return sized_video(timeline.video_bytes_target)
                if timeline.video not in ("sample", "from_image"):
                    return Path(timeline.video)
                if timeline.video == "from_image" and task.image is not None:
                    return video_from_image(task.image)
                return sample_video()

        task.video_path = await asyncio.to_thread(build)
        return task.video_path

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        task_id = name.removesuffix(".mp4").removesuffix(".gif")
        task = self.tasks.get(task_id)
        if name.endswith(".gif") and task is not None and task.timeline.gif_first:
            task.gif_downloads += 1
            return web.Response(body=_tiny_gif(), content_type="image/gif")

        async def normal() -> web.StreamResponse:
            now = time.monotonic()
            if task is None or task.status_at(now) != "TASK_STATUS_SUCCEED" or task.timeline.no_videos:
                return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            if now > task.finishes_at + self.video_ttl_s * task.scale:
                return _xml_error(403, "AccessDenied", "Request has expired")
            timeline = task.timeline
            if timeline.video_status != 200:
                return _xml_error(timeline.video_status, "Error", f"HTTP {timeline.video_status}")
            if timeline.video_not_mp4:
                html = "<!doctype html><html><body><h1>Loading…</h1></body></html>"
                return web.Response(text=html, content_type="text/html")
            path = task.video_path or await (task._video_job or self._resolve_video(task))
            task.video_downloads += 1
            request[_VIDEO_PATH] = path
            return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

        fault = self._take_fault("video", task_id)
        if fault is None:
            return await normal()
        return await self._apply_fault(request, fault, normal, create_first=False)


def _tiny_gif() -> bytes:
    """A real two-frame GIF, the kind of preview a result may list before its MP4."""
    frames = [Image.new("RGB", (64, 36), color) for color in ((200, 40, 40), (40, 40, 200))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


# Standalone ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the fake Novita API on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies every timeline duration")
    parser.add_argument("--queued-s", type=float, default=Timeline.queued_s)
    parser.add_argument("--processing-s", type=float, default=Timeline.processing_s)
    parser.add_argument("--outcome", choices=("succeed", "fail", "never"), default="succeed")
    args = parser.parse_args(argv)
    timeline = Timeline(queued_s=args.queued_s, processing_s=args.processing_s, outcome=args.outcome)
    fake = FakeNovita(api_key=args.api_key, time_scale=args.time_scale, default_timeline=timeline)
    fake.server.port = args.port

    async def serve() -> None:
        async with fake:
            key_note = "the default test key" if args.api_key == DEFAULT_API_KEY else "the key given"
            print(f"Fake Novita serving at {fake.base_url} (API key: {key_note})", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
