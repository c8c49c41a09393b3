"""Several real processes on one PostgreSQL database: a job whose process is killed is taken over by another
process when its lease runs out, by the restart rules (never submitted twice, delivered once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fakes.novita import FakeNovita, Timeline

ROOT = Path(__file__).resolve().parent.parent
RUNNER = [sys.executable, "-m", "tests.support.runner_process"]


@pytest.fixture
def fake() -> Iterator[FakeNovita]:
    with FakeNovita(default_timeline=Timeline(queued_s=0.2, processing_s=3)).threaded() as f:
        yield f


def env_for(fake: FakeNovita, tmp_path: Path, url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "NOVITA_API_KEY": fake.api_key,
        "NOVITA_BASE_URL": fake.base_url,
        "DATABASE_URL": url,
        "MEDIA_DIR": str(tmp_path / "media"),  # shared, as a volume shared by the processes would be
        "POLL_MIN_S": "0.1",
        "POLL_FIRST_S": "0.2",
        "POLL_MAX_S": "0.5",
        "JOB_LEASE_S": "2",
    }


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def job_state(url: str) -> str | None:
    try:
        rows = query(url, "SELECT state FROM jobs ORDER BY id LIMIT 1")
    except psycopg.errors.UndefinedTable:  # the first process has not created the schema yet
        return None
    return str(rows[0][0]) if rows else None


def wait_for_state(url: str, state: str, proc: subprocess.Popen[bytes], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if job_state(url) == state:
            return
        assert proc.poll() is None, "the process exited early"
        time.sleep(0.02)
    raise AssertionError(f"job never reached {state}; it is {job_state(url)}")


@pytest.mark.parametrize("state", ["submitting", "processing", "downloading", "delivering"])
def test_a_job_whose_process_is_killed_is_taken_over_by_another(
    fake: FakeNovita, tmp_path: Path, postgres_url: str, state: str
) -> None:
    env = env_for(fake, tmp_path, postgres_url)
    log = tmp_path / "deliveries.log"
    extra: list[str] = []
    if state == "submitting":
        fake.inject("submit", "hang", seconds=60)  # the task is created, the answer never comes
    elif state == "downloading":
        fake.inject("video", "hang", seconds=60)
    elif state == "delivering":
        extra = ["--deliver-delay", "6"]  # both processes post slowly: the driver is killed while posting
    out = tmp_path / "processes.log"  # both processes' logs, to say what happened when this fails
    with out.open("ab") as sink:
        standby = subprocess.Popen(
            [*RUNNER, "--log", str(log), "--until-jobs", "1", *extra], cwd=ROOT, env=env, stderr=sink
        )
        first = subprocess.Popen(
            [*RUNNER, "--log", str(log), "--submit", "a lighthouse", *extra], cwd=ROOT, env=env, stderr=sink
        )
    try:
        wait_for_state(postgres_url, state, first)
        [(owner,)] = query(postgres_url, "SELECT lease_owner FROM jobs")
        # Born free, the job went to whichever process claimed it first: kill that one.
        driver, other = (first, standby) if f":{first.pid}:" in str(owner) else (standby, first)
        assert f":{driver.pid}:" in str(owner)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        survivor = other.wait(90)
        assert survivor == 0
    finally:
        for proc in (first, standby):
            if proc.poll() is None:
                proc.kill()
    [(final, charge, lease)] = query(postgres_url, "SELECT state, charge_state, lease_owner FROM jobs")
    claims = [
        str(d)
        for (d,) in query(postgres_url, "SELECT detail FROM job_events WHERE state = 'claimed' ORDER BY id")
    ]
    # The killed process drove it, and the survivor took it over last (a busy machine may hand a lease back
    # and forth before the kill; the takeover after it is what counts).
    assert any(f":{driver.pid}:" in d for d in claims)
    trail = query(postgres_url, "SELECT id, state, at, detail FROM job_events ORDER BY id")
    assert f":{other.pid}:" in claims[-1], (
        f"{driver.pid} killed, {other.pid} left: {trail}\n{out.read_text()}"
    )
    assert lease is None
    ledger = dict(query(postgres_url, "SELECT kind, SUM(credits) FROM ledger GROUP BY kind"))
    if state == "submitting":  # "we may have paid": refunded and reported, never sent again
        assert final == "failed"
        assert charge == "refunded"
        assert ledger == {"reserve": 1, "refund": 1}
        assert len(fake.submits) == 1
        assert not log.exists()
    else:
        assert final == "delivered"
        assert ledger == {"reserve": 1, "charge": 1}
        assert len(fake.created_submits) == 1
        assert len(log.read_text().splitlines()) == 1


def test_the_novita_limits_hold_for_all_processes_together(tmp_path: Path, postgres_url: str) -> None:
    """Three processes, each with four jobs to send: never more submits in a minute than the rate allows,
    and never more tasks at Novita at once than the in-flight cap, counted over all three."""
    timeline = Timeline(queued_s=0.1, processing_s=1.5)
    with FakeNovita(default_timeline=timeline).threaded() as fake:
        env = {**env_for(fake, tmp_path, postgres_url), "NOVITA_RATE_PER_MINUTE": "9",
               "NOVITA_MAX_IN_FLIGHT": "2", "USER_MAX_CONCURRENT": "100", "GUILD_MAX_CONCURRENT": "100",
               "DEFAULT_QUOTA_CREDITS": "-1"}  # fmt: skip
        log = tmp_path / "deliveries.log"
        procs = [
            subprocess.Popen(
                [*RUNNER, "--log", str(log), "--submit", f"process {n}", "--count", "4"], cwd=ROOT, env=env
            )
            for n in range(3)
        ]
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and len(fake.created_submits) < 9:
                time.sleep(0.2)
            time.sleep(3)  # room for a tenth submit, which must not come within the minute
            tasks = sorted(fake.tasks.values(), key=lambda t: t.created_at)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(10)
    assert len(fake.submits) == 9  # 12 jobs wait; the rate lets 9 out in the first minute
    assert len({s["body"]["prompt"] for s in fake.submits}) == 9  # nine different jobs, none sent twice
    intervals = [(t.created_at, t.finishes_at) for t in tasks]
    most_at_once = max(sum(1 for a, b in intervals if a <= start < b) for start, _ in intervals)
    assert most_at_once <= 2
    owners = {str(row[0]).split(":")[1] for row in query(postgres_url, "SELECT owner FROM novita_submits")}
    assert owners <= {str(p.pid) for p in procs}  # turns were taken by these processes, counted together


RACE = r"""
import asyncio, sys
from bot.core import quota
from bot.core.models import JobRequest
from bot.core.settings import load_settings
from bot.core.store.postgres import PostgresStore

async def main(url: str, process: int) -> None:
    settings = load_settings(default_quota_credits=-1, user_max_concurrent=1000, guild_max_concurrent=1000)
    store = PostgresStore(url)
    await store.open()
    try:
        requests = [JobRequest(guild_id=77, channel_id=1, user_id=1000 * process + n, prompt="race")
                    for n in range(12)]
        results = await asyncio.gather(*(quota.admit(store, settings, r) for r in requests))
        print(sum(1 for job, _ in results if job is not None))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_a_server_budget_raced_by_several_processes_is_never_passed(
    tmp_path: Path, postgres_url: str
) -> None:
    """Three processes, twelve requests each, all at once, against one server's $2.80 budget (ten 6-second
    768P videos at $0.28): exactly ten are admitted over all processes, and the reservations stay within."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the schema, then the server's budget
        from bot.core.store.postgres import apply_migrations

        apply_migrations(conn)
        conn.execute("INSERT INTO guild_settings (guild_id, budget_usd) VALUES (77, 2.80)")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, postgres_url, str(n)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    admitted = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(admitted) == 10
    [(count, spent)] = query(postgres_url, "SELECT COUNT(*), SUM(cost_usd) FROM jobs WHERE guild_id = 77")
    assert count == 10
    assert float(spent) <= 2.80 + 1e-9
