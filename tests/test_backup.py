"""`python -m bot backup [PATH]` copies the database consistently while the bot runs (its instance lock
held, its latest writes still in the WAL), and the copy restores to an equal database."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from bot.core import quota
from bot.core.instance_lock import InstanceLock
from bot.core.models import JobRequest
from bot.core.preferences import Preferences
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store

ROOT = Path(__file__).resolve().parent.parent


def run_backup(
    database: Path, *args: str, cwd: Path, caller: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_", "HAILUO_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_PATH=str(database))
    if caller is not None:
        env["HAILUO_CALLER_CWD"] = str(caller)  # as scripts/start.py passes it
    return subprocess.run(
        [sys.executable, "-m", "bot", "backup", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def dump(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}  # noqa: S608


async def add_jobs(store: Store, settings: Settings, count: int) -> None:
    for i in range(count):
        request = JobRequest(guild_id=10, channel_id=5, user_id=100 + i, prompt=f"video {i}")
        job, decision = await quota.admit(store, settings, request)
        assert job is not None, decision.message


async def test_backup_while_the_bot_runs_restores_to_an_equal_database(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    lock = InstanceLock(settings.database_path)
    lock.acquire()  # what a running bot holds
    try:
        await add_jobs(store, settings, 5)
        await store.set_member_prefs(10, 100, Preferences(resolution="1080P", dm_results=True))
        await store.grant(10, 100, 3, actor_id=1)  # the last write, still in the WAL
        assert Path(f"{settings.database_path}-wal").stat().st_size > 0
        caller = tmp_path / "operator"
        caller.mkdir()
        result = run_backup(settings.database_path, "copy.db", cwd=tmp_path, caller=caller)
        assert result.returncode == 0, result.stderr
        assert lock.held
        copy = caller / "copy.db"  # relative to the folder the operator typed the command in
        assert "Backed up" in result.stdout
        assert "5 job(s)" in result.stdout
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert not Path(f"{copy}-wal").exists()  # one self-contained file
        live = await store.ledger_totals()
    finally:
        lock.release()
    await store.close()
    original = dump(settings.database_path)

    restored = tmp_path / "restored" / "hailuo.db"
    restored.parent.mkdir()
    restored.write_bytes(copy.read_bytes())
    reopened = SqliteStore(restored)
    await reopened.open()  # what the bot does on start: migrations find nothing to do
    try:
        assert await reopened.ledger_totals() == live
        assert len(await reopened.unfinished_jobs()) == 5
        assert await reopened.member_prefs(10, 100) == Preferences(resolution="1080P", dm_results=True)
    finally:
        await reopened.close()
    assert dump(restored) == original
    await store.open()  # for the fixture's teardown


def test_backup_into_a_folder_names_the_file(tmp_path: Path) -> None:
    database = tmp_path / "hailuo.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY)")
    result = run_backup(database, "backups/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [made] = (tmp_path / "backups").iterdir()
    assert made.name.startswith("hailuo-")
    assert made.suffix == ".db"
    again = run_backup(database, str(made), cwd=tmp_path)
    assert again.returncode == 1
    assert "exists already" in again.stderr


def test_backup_without_a_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "data" / "hailuo.db"
    result = run_backup(database, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"There is no database at {database} (DATABASE_PATH); nothing to back up."
    assert not database.exists()
