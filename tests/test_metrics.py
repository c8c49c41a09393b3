"""Health and metrics: /healthz answers 200 while the gateway and the store work and 503 otherwise; /metrics
is Prometheus' text format with the runner's and the Novita client's figures; the core never imports Discord.
The end-to-end version (the real bot, a job delivered) is in test_e2e_metrics.py."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core import metrics
from bot.core.metrics import MetricsServer
from bot.core.models import JobRequest
from bot.core.store import Store
from tests.conftest import Env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class Gateway:
    connected = True


@pytest.fixture
async def served(store: Store) -> AsyncIterator[tuple[str, Gateway]]:
    gateway = Gateway()

    async def health() -> tuple[bool, str]:
        if not gateway.connected:
            return False, "not connected to Discord's gateway"
        await store.ping()
        return True, "ok"

    server = MetricsServer("127.0.0.1", free_port(), health)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", gateway
    finally:
        await server.stop()


async def test_healthz_is_200_while_gateway_and_store_work_and_503_otherwise(
    served: tuple[str, Gateway], store: Store
) -> None:
    url, gateway = served
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/healthz") as resp:
            assert (resp.status, await resp.text()) == (200, "ok\n")
        gateway.connected = False
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 503
            assert "gateway" in await resp.text()
        gateway.connected = True
        await store.close()  # the database stops answering
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 503
            assert "RuntimeError" in await resp.text()
        await store.open()  # for the fixture's teardown


async def test_metrics_count_a_job_through_the_runner_and_the_novita_client(
    env: Env, served: tuple[str, Gateway]
) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics") as resp:
            before = samples(await resp.text())
        job = await env.run(JobRequest(guild_id=1, channel_id=2, user_id=3, prompt="a lighthouse"))
        assert job.state == "delivered"
        async with http.get(url + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            after = samples(await resp.text())

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("hailuo_jobs_total", state="delivered", model="hailuo-02", mode="live") == 1
    assert grew("hailuo_credits_charged_total", mode="live") == 1
    assert grew("hailuo_usd_charged_total", mode="live") == pytest.approx(0.28)
    assert grew("hailuo_novita_requests_total", operation="submit", outcome="ok") == 1
    assert grew("hailuo_novita_requests_total", operation="poll", outcome="ok") >= 1
    assert grew("hailuo_delivery_seconds_count") == 1
    assert ("hailuo_queue_length", ()) in after
    assert ("hailuo_in_flight", ()) in after


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [(200, None, "ok"), (429, None, "rate_limited"), (401, None, "refused"), (503, None, "server_error"),
     (400, None, "client_error"), (None, TimeoutError(), "timeout")],
)  # fmt: skip
def test_novita_outcomes_are_a_small_fixed_set(
    status: int | None, error: Exception | None, outcome: str
) -> None:
    assert metrics.novita_outcome(status, error) == outcome
