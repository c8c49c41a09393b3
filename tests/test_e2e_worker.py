"""`python -m bot worker` beside `python -m bot` on one PostgreSQL database: the worker runs jobs with no
gateway connection and delivers over Discord's REST API, even when the gateway process dies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import ROOT, running_world

pytestmark = pytest.mark.e2e


def processing_driver(url: str, job_id: int = 1) -> str | None:
    """The process driving the job once Novita is making it (past the submit, whose loss would be refunded,
    not finished) and the gateway has stored its card."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT lease_owner, card_message_id, state FROM jobs WHERE id = %s", [job_id]
        ).fetchone()
    return row[0] if row is not None and row[1] is not None and row[2] == "processing" else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthz(port: int) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()
    except OSError:
        return None


def uploads(world_requests: list[object]) -> int:
    return sum(
        1
        for r in world_requests
        if 200 <= getattr(r, "status", 0) < 300
        for f in getattr(r, "files", [])
        if getattr(f, "filename", "").endswith(".mp4")
    )


def test_a_worker_finishes_and_delivers_a_job_after_the_gateway_process_dies(
    tmp_path: Path, postgres_url: str
) -> None:
    timeline = Timeline(queued_s=0.3, processing_s=4)
    with running_world(tmp_path, timeline=timeline, DATABASE_URL=postgres_url, JOB_LEASE_S="2") as world:
        worker_log = (tmp_path / "worker.log").open("wb")
        port = free_port()
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], cwd=tmp_path,
            env={**world.bot.env, "METRICS_PORT": str(port)}, stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            log_path = tmp_path / "worker.log"
            world.wait_for(lambda: "running jobs" in log_path.read_text(), 30, "the worker to start")
            # A worker is healthy without a gateway: its store answers.
            health = world.wait_for(lambda: healthz(port), 20, "the worker's /healthz")
            assert health == (200, "ok")
            d = world.discord
            inter = d.slash("video", {"prompt": "a lighthouse in the fog"})
            assert not inter.wait_response().ephemeral
            owner = world.wait_for(lambda: processing_driver(postgres_url), 20, "the job to be processing")
            world.bot.kill()  # the gateway dies mid-job, whichever process drives it
            card = inter.wait_original(lambda m: m.attachments, timeout=60)
            assert card.attachments[0].filename.endswith(".mp4")
            time.sleep(1.0)  # room for a second upload, which must not come
            assert uploads(d.world.requests) == 1
            assert len(world.novita.created_submits) == 1
            with psycopg.connect(postgres_url) as conn:
                state, lease = conn.execute("SELECT state, lease_owner FROM jobs WHERE id = 1").fetchone()
                claims = [
                    r[0]
                    for r in conn.execute("SELECT detail FROM job_events WHERE state = 'claimed' ORDER BY id")
                ]
            assert state == "delivered"
            assert lease is None
            assert f":{worker.pid}:" in (claims[-1] if claims else owner)  # the worker drove it to the end
        finally:
            worker.terminate()
            assert worker.wait(30) == 0  # a clean stop on SIGTERM
            worker_log.close()
        log = (tmp_path / "worker.log").read_text()
        assert "no gateway connection" in log
        assert "Traceback" not in log


def test_a_worker_on_sqlite_is_refused_in_one_sentence(tmp_path: Path) -> None:
    token = "x" * 24 + ".abcdef." + "y" * 27  # shaped like a bot token; never sent anywhere
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DISCORD_TOKEN": token,
           "NOVITA_MODE": "simulate", "DATABASE_PATH": str(tmp_path / "h.db")}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bot", "worker"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "set DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr
