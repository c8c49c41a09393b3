"""Soak: 200 jobs against the real bot with random Novita and Discord faults and two crashes (SIGKILL).

Bounded (a few minutes at most, loopback only). At the end every job is in a final state, the credits
balance (reserved = charged + refunded), and no job was submitted or delivered twice.
"""

from __future__ import annotations

import collections
import random
import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.fakes.novita import Timeline
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e

JOBS = 200
FINAL = ("delivered", "failed", "cancelled", "undelivered")


def random_fault(world: World, rng: random.Random) -> None:
    roll = rng.random()
    fake = world.novita
    quick = Timeline(queued_s=rng.uniform(0.05, 0.3), processing_s=rng.uniform(0.2, 1.2), eta_noise=0.3)
    if roll < 0.06:
        fake.inject("submit", "status", status=429, retry_after=0.1)
    elif roll < 0.10:
        fake.inject("submit", "status", status=503)
    elif roll < 0.13:
        fake.inject("submit", "hang", seconds=3)
    elif roll < 0.18:
        fake.inject("poll", "status", status=503)
    elif roll < 0.22:
        fake.inject("poll", "malformed")
    elif roll < 0.26:
        quick.outcome = "fail"
        quick.reason = "Sensitive content"
    elif roll < 0.28:
        quick.outcome = "never"
    elif roll < 0.31:
        quick.video_status = 404
    elif roll < 0.34:
        world.discord.rate_limit("PATCH /webhooks/*", times=1, retry_after=0.2)
    fake.script(quick)


def db_rows(world: World) -> list[tuple[int, str, str, int]]:
    with sqlite3.connect(world.db, timeout=10) as conn:
        return conn.execute("SELECT id, state, charge_state, credits FROM jobs ORDER BY id").fetchall()


def test_soak_200_jobs_with_faults_and_crashes(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    settings = {
        "DEFAULT_QUOTA_CREDITS": "-1",
        "USER_MAX_CONCURRENT": "100",
        "GUILD_MAX_CONCURRENT": "1000",
        "NOVITA_MAX_IN_FLIGHT": "40",
        "NOVITA_RATE_PER_MINUTE": "10000",
        "NOVITA_REQUEST_TIMEOUT_S": "1",
        "JOB_DEADLINE_MINUTES": "0.15",
        "CARD_EDIT_INTERVAL_S": "0.5",
        "LOG_LEVEL": "INFO",
    }
    with running_world(tmp_path, **settings) as world:
        members = [world.discord.add_member(world.discord.guild, f"member{i}").user for i in range(10)]
        crash_at = {70, 140}
        for n in range(JOBS):
            if n in crash_at:
                world.bot.kill()
                world.restart_bot()
            random_fault(world, rng)
            inter = world.discord.slash("video", {"prompt": f"soak #{n}"}, user=members[n % len(members)])
            inter.wait_response(timeout=5)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            rows = db_rows(world)
            if len(rows) == JOBS and all(state in FINAL for _, state, _, _ in rows):
                break
            time.sleep(0.5)
        rows = db_rows(world)
        world.bot.stop()

        assert len(rows) == JOBS
        stuck = [(i, s) for i, s, _, _ in rows if s not in FINAL]
        assert stuck == [], stuck
        with sqlite3.connect(world.db) as conn:
            totals = dict(conn.execute("SELECT kind, SUM(credits) FROM ledger GROUP BY kind").fetchall())
        assert totals["reserve"] == totals.get("charge", 0) + totals.get("refund", 0)
        for job_id, state, charge, _ in rows:
            expected = "charged" if state in ("delivered", "undelivered") else "refunded"
            assert charge == expected, (job_id, state, charge)

        created = collections.Counter(s["body"]["prompt"] for s in world.novita.submits if s.get("created"))
        assert max(created.values()) == 1, [p for p, c in created.items() if c > 1]

        uploads = collections.Counter()
        for r in world.discord.requests:
            if 200 <= r.status < 300:
                for f in r.files:
                    match = re.fullmatch(r"hailuo-(\d+)\.mp4", getattr(f, "filename", ""))
                    if match:
                        uploads[int(match.group(1))] += 1
        delivered = {job_id for job_id, state, _, _ in rows if state == "delivered"}
        assert set(uploads) == delivered
        assert all(count == 1 for count in uploads.values()), {k: v for k, v in uploads.items() if v > 1}
        log = world.bot.log()
        resumed = re.findall(r"resuming (\d+) unfinished job\(s\): (.*)", log)
        assert len(resumed) == 2, "both crashes happened with jobs in flight"
        assert all(re.search(r":(submitted|processing|downloading|delivering)", jobs) for _, jobs in resumed)
        outcomes = collections.Counter(state for _, state, _, _ in rows)
        assert outcomes["delivered"] > JOBS // 2, outcomes
        assert outcomes["failed"] > 0, outcomes
