"""Prometheus metrics and the health check, served on METRICS_PORT (off by default) on the bot's own loop.

The core calls the small functions below at its existing seams (the runner when a job is charged, delivered
or ends; the Novita client for every request; the first answer to a member). They only update in-process
counters, which costs next to nothing when nothing is served. This module knows nothing of Discord: the
health check is handed a coroutine function that answers "is the gateway connected and the store alive?".

    GET /healthz  200 "ok" while the gateway and the store work, 503 and the reason otherwise
    GET /metrics  Prometheus' text format (the names below, all prefixed hailuo_)
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger("bot.metrics")

P = ParamSpec("P")
R = TypeVar("R")

REGISTRY = CollectorRegistry(auto_describe=True)

FIRST_RESPONSE = Histogram(
    "hailuo_first_response_seconds",
    "From a member's request (Discord's interaction time) to the bot's first answer (the job card).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)
DELIVERY = Histogram(
    "hailuo_delivery_seconds",
    "From the video service reporting a video ready to the video posted in Discord.",
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)
JOBS = Counter(
    "hailuo_jobs",
    "Jobs by the state they came to rest in (delivered, failed, cancelled, undelivered), model and mode.",
    ["state", "model", "mode"],
    registry=REGISTRY,
)
NOVITA_REQUESTS = Counter(
    "hailuo_novita_requests",
    "HTTP requests to Novita by operation (submit, poll) and outcome.",
    ["operation", "outcome"],
    registry=REGISTRY,
)
CREDITS = Counter(
    "hailuo_credits_charged",
    "Credits charged for videos made, by mode (live or trial).",
    ["mode"],
    registry=REGISTRY,
)
USD = Counter(
    "hailuo_usd_charged",
    'Estimated USD of videos made, by mode; mode="trial" videos are simulated and cost nothing.',
    ["mode"],
    registry=REGISTRY,
)
QUEUE = Gauge("hailuo_queue_length", "Jobs waiting in the local queue for a submit turn.", registry=REGISTRY)
IN_FLIGHT = Gauge(
    "hailuo_in_flight", "Jobs holding a Novita slot (submitting, submitted, processing).", registry=REGISTRY
)
DEFAULT_MODEL = "hailuo-02"


class JobLike(Protocol):
    state: Any
    simulated: bool
    credits: int
    cost_usd: float
    finished_at: datetime | None


def _mode(job: JobLike) -> str:
    return "trial" if job.simulated else "live"


def _state(job: JobLike) -> str:
    return str(getattr(job.state, "value", job.state))


def job_rested(job: JobLike) -> None:
    """A job came to rest (delivered, failed, cancelled or undelivered)."""
    model = getattr(job, "model", None) or DEFAULT_MODEL
    JOBS.labels(state=_state(job), model=model, mode=_mode(job)).inc()


def job_charged(job: JobLike) -> None:
    CREDITS.labels(mode=_mode(job)).inc(job.credits)
    USD.labels(mode=_mode(job)).inc(job.cost_usd)


def job_delivered(job: JobLike, now: datetime) -> None:
    if job.finished_at is not None:
        DELIVERY.observe(max(0.0, (now - job.finished_at).total_seconds()))
    job_rested(job)


def first_response(requested_at: datetime, now: datetime) -> None:
    FIRST_RESPONSE.observe(max(0.0, (now - requested_at).total_seconds()))


def watch_runner(queue_length: Callable[[], int], in_flight: Callable[[], int]) -> None:
    """Read the gauges from the runner when scraped (never stale, nothing to update)."""
    QUEUE.set_function(queue_length)
    IN_FLIGHT.set_function(in_flight)


def novita_outcome(status: int | None, error: BaseException | None = None) -> str:
    """A small fixed set of outcomes, so the counter stays readable."""
    if error is not None:
        name = type(error).__name__
        if "Timeout" in name:
            return "timeout"
        if "Connection" in name:
            return "connection_error"
        return "error"
    assert status is not None
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "refused"
    return "server_error" if status >= 500 else "client_error"


def count_novita_requests(
    exchange: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Decorates the Novita client's one transport method (`operation=` keyword, result with `.status`)."""

    @functools.wraps(exchange)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        operation = str(kwargs.get("operation", "?"))
        try:
            response = await exchange(*args, **kwargs)
        except Exception as exc:
            NOVITA_REQUESTS.labels(operation=operation, outcome=novita_outcome(None, exc)).inc()
            raise
        status = getattr(response, "status", None)
        NOVITA_REQUESTS.labels(operation=operation, outcome=novita_outcome(status)).inc()
        return response

    return wrapper


def render() -> bytes:
    return generate_latest(REGISTRY)


# Serving ------------------------------------------------------------------------------------------------
Health = Callable[[], Awaitable[tuple[bool, str]]]
HEALTH_TIMEOUT_S = 5.0


class MetricsServer:
    """`/healthz` and `/metrics` on host:port, on the running loop. `start()` and `stop()`."""

    def __init__(self, host: str, port: int, health: Health) -> None:
        self.host = host
        self.port = port
        self.health = health
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                ok, reason = await self.health()
        except TimeoutError:
            ok, reason = False, f"no answer within {HEALTH_TIMEOUT_S:g} s"
        except Exception as exc:
            ok, reason = False, f"health check failed: {type(exc).__name__}"
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = render()  # microseconds; the runner's gauges are read on its own loop
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
