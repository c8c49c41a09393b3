"""METRICS_PORT end to end: the real bot serves /healthz and /metrics on its own loop while it works."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import running_world
from tests.test_metrics import free_port

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:  # 503 while not (yet) healthy
        return exc.code, exc.read().decode()


def test_the_running_bot_serves_health_and_metrics(tmp_path: Path) -> None:
    port = free_port()
    with running_world(tmp_path, METRICS_PORT=str(port)) as world:
        base = f"http://127.0.0.1:{port}"
        world.wait_for(lambda: get(base + "/healthz") == (200, "ok\n"), what="a healthy bot")
        inter = world.discord.slash("video", {"prompt": "a lighthouse in fog"})
        assert not inter.wait_response().ephemeral
        world.wait_job_state("delivered")

        status, text = get(base + "/metrics")
        assert status == 200
        values = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert (
            values[("hailuo_jobs_total", (("mode", "live"), ("model", "hailuo-02"), ("state", "delivered")))]
            == 1
        )
        assert values[("hailuo_first_response_seconds_count", ())] == 1
        assert values[("hailuo_delivery_seconds_count", ())] == 1
        assert values[("hailuo_credits_charged_total", (("mode", "live"),))] == 1
        assert values[("hailuo_novita_requests_total", (("operation", "submit"), ("outcome", "ok")))] == 1
        assert values[("hailuo_queue_length", ())] == 0
        assert values[("hailuo_in_flight", ())] == 0
