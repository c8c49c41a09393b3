"""`python -m bot migrate-to-postgres`: a real SQLite database copied into a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bot.core import quota
from bot.core.models import ChargeState, JobRequest, JobState
from bot.core.preferences import Preferences
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store
from bot.core.store.postgres import PostgresStore

ROOT = Path(__file__).resolve().parent.parent
MEMBER_PREFS = Preferences(duration=10, model="hailuo-2.3", prompt_expansion=False, dm_results=True)


async def walk_to(store: Store, job_id: int, *states: JobState, **last: object) -> None:
    for state in states:
        now = await store.get_job(job_id)
        assert now is not None
        charge = ChargeState.CHARGED if state == JobState.DELIVERING else None
        charge = ChargeState.REFUNDED if state == JobState.FAILED else charge
        await store.transition(job_id, state, expect=(now.state,), charge=charge, **last)


async def fill(path: Path, settings: Settings) -> list[int]:
    store = SqliteStore(path)
    await store.open()
    ids = []
    try:
        for user in (1, 2, 3):
            job, decision = await quota.admit(
                store, settings, JobRequest(guild_id=10, channel_id=20, user_id=user, prompt=f"clip {user}")
            )
            assert job is not None, str(decision.message)
            ids.append(job.id)
        path_to_done = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.PROCESSING,
                        JobState.DOWNLOADING, JobState.DELIVERING, JobState.DELIVERED)  # fmt: skip
        await walk_to(store, ids[0], *path_to_done)
        await walk_to(store, ids[1], JobState.QUEUED, JobState.FAILED)
        await store.set_guild_settings(10, actor_id=99, quota_credits=7, blocklist=["nude"])
        await store.set_role_limit(10, 555, 20, actor_id=99)
        await store.set_member_policy(10, 2, actor_id=99, blocked=True)
        await store.grant(10, 3, 4, actor_id=99, note="birthday")
        await store.set_member_prefs(10, 1, MEMBER_PREFS)
    finally:
        await store.close()
    return ids


def run_migrate(db: Path, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_PATH": str(db),
           "DATABASE_URL": url}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate-to-postgres"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


async def test_a_sqlite_database_is_copied_whole_and_checked(
    settings: Settings, postgres_url: str, tmp_path: Path
) -> None:
    settings.default_quota_credits = 100
    db = tmp_path / "old.db"
    ids = await fill(db, settings)
    done = run_migrate(db, postgres_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ledger balance" in done.stdout

    store = PostgresStore(postgres_url)
    await store.open()
    try:
        first = await store.get_job(ids[0])
        assert first is not None
        assert first.state == JobState.DELIVERED
        assert first.prompt == "clip 1"
        assert [e["state"] for e in await store.events(ids[0])][-1] == "delivered"
        assert await store.ledger_totals() == {"reserve": 3, "charge": 1, "refund": 1, "grant": 4}
        assert (await store.guild_settings(10)).blocklist == ("nude",)
        policy = await store.policy(10, 2, role_ids=(555,))
        assert policy.roles == {555: 20}
        assert policy.member is not None
        assert policy.member.blocked is True
        assert await store.member_prefs(10, 1) == MEMBER_PREFS  # /preferences come along
        # New work continues after the copied ids.
        job, decision = await quota.admit(
            store, settings, JobRequest(guild_id=10, channel_id=20, user_id=9, prompt="new")
        )
        assert job is not None, str(decision.message)
        assert job.id == max(ids) + 1
    finally:
        await store.close()


async def test_copying_into_a_database_that_holds_jobs_is_refused_and_changes_nothing(
    settings: Settings, postgres_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    await fill(db, settings)
    assert run_migrate(db, postgres_url, tmp_path).returncode == 0
    again = run_migrate(db, postgres_url, tmp_path)
    assert again.returncode == 1
    assert "already holds jobs" in again.stderr
    assert "Traceback" not in again.stderr
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (3,)


def test_without_database_url_it_says_what_to_set(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DATABASE_PATH": str(tmp_path / "x.db"),
    }
    done = subprocess.run([sys.executable, "-m", "bot", "migrate-to-postgres"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr


def run_check(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
           "NOVITA_MODE": "simulate"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "bot", "check"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_check_names_the_postgresql_database_and_its_schema(postgres_url: str, tmp_path: Path) -> None:
    done = run_check(postgres_url, tmp_path)
    line = next(x for x in done.stdout.splitlines() if x.startswith("database"))
    assert "ok" in line
    assert "PostgreSQL 127.0.0.1:" in line
    assert "schema m008_job_locale" in line


def test_check_says_when_postgresql_cannot_be_reached(postgres_url: str, tmp_path: Path) -> None:
    dead = postgres_url.rsplit(":", 1)[0] + ":1/nowhere"  # nothing listens on port 1
    done = run_check(dead, tmp_path)
    assert done.returncode == 1
    assert "DATABASE_URL: PostgreSQL cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr


def test_backup_with_postgresql_names_pg_dump(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
           "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bot", "backup"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "pg_dump" in done.stderr
