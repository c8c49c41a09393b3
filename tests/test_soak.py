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

from tests.support.harness import World, running_world
from tests.support.soak import (
    UNCAPPED,
    JobRow,
    all_final,
    assert_delivered_once,
    assert_no_prompt_created_twice,
    assert_settled_and_balanced,
    random_fault,
)

pytestmark = pytest.mark.e2e

JOBS = 200


def db_rows(world: World) -> list[JobRow]:
    with sqlite3.connect(world.db, timeout=10) as conn:
        return conn.execute("SELECT id, state, charge_state FROM jobs ORDER BY id").fetchall()


def test_soak_200_jobs_with_faults_and_crashes(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    settings = {
        **UNCAPPED,
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
            if all_final(db_rows(world), JOBS):
                break
            time.sleep(0.5)
        rows = db_rows(world)
        world.bot.stop()

        with sqlite3.connect(world.db) as conn:
            ledger = conn.execute(
                "SELECT job_id, kind, credits FROM ledger WHERE job_id IS NOT NULL"
            ).fetchall()
        assert_settled_and_balanced(rows, ledger, JOBS)
        assert_no_prompt_created_twice(world.novita)
        assert_delivered_once(world, rows)
        log = world.bot.log()
        resumed = re.findall(r"resuming (\d+) unfinished job\(s\): (.*)", log)
        assert len(resumed) == 2, "both crashes happened with jobs in flight"
        assert all(re.search(r":(submitted|processing|downloading|delivering)", jobs) for _, jobs in resumed)
        outcomes = collections.Counter(state for _, state, _ in rows)
        assert outcomes["delivered"] > JOBS // 2, outcomes
        assert outcomes["failed"] > 0, outcomes
