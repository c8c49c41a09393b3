"""Crash safety with real processes: SIGKILL mid-job, restart, and the job completes exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest

from bot.core import media
from tests.fakes.novita import FakeNovita, Timeline

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> Iterator[FakeNovita]:
    with FakeNovita(default_timeline=Timeline(queued_s=0.2, processing_s=2.5)).threaded() as f:
        yield f


def env_for(fake: FakeNovita, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "NOVITA_API_KEY": fake.api_key,
        "NOVITA_BASE_URL": fake.base_url,
        "DATABASE_PATH": str(tmp_path / "hailuo.db"),
        "MEDIA_DIR": str(tmp_path / "media"),
        "POLL_MIN_S": "0.1",
        "POLL_FIRST_S": "0.2",
        "POLL_MAX_S": "0.5",
    }


def job_state(db: Path) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            row = conn.execute("SELECT state FROM jobs ORDER BY id LIMIT 1").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def wait_for_state(db: Path, state: str, proc: subprocess.Popen[bytes], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if job_state(db) == state:
            return
        assert proc.poll() is None, "the runner exited early"
        time.sleep(0.02)
    raise AssertionError(f"job never reached {state}; it is {job_state(db)}")


def test_killed_while_processing_resumes_and_delivers_exactly_once(fake: FakeNovita, tmp_path: Path) -> None:
    env = env_for(fake, tmp_path)
    log = tmp_path / "deliveries.log"
    db = tmp_path / "hailuo.db"
    cmd = [sys.executable, "-m", "tests.support.runner_process", "--log", str(log)]
    first = subprocess.Popen([*cmd, "--submit", "a lighthouse in a storm"], cwd=ROOT, env=env)
    try:
        wait_for_state(db, "processing", first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert job_state(db) == "processing"
    assert not log.exists()

    second = subprocess.run(cmd, cwd=ROOT, env=env, timeout=60)
    assert second.returncode == 0
    assert job_state(db) == "delivered"
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    assert media.is_mp4(Path(lines[0].split(" ", 1)[1]))
    assert len(fake.submits) == 1
    with sqlite3.connect(db) as conn:
        kinds = dict(conn.execute("SELECT kind, SUM(credits) FROM ledger GROUP BY kind").fetchall())
    assert kinds == {"reserve": 1, "charge": 1}


def test_generate_command_writes_a_playable_mp4(fake: FakeNovita, tmp_path: Path) -> None:
    env = env_for(fake, tmp_path)
    out = tmp_path / "out" / "clip.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "generate", "a red fox in snow", "--duration", "10", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"video saved to {out}" in result.stdout
    assert media.is_mp4(out)
    import asyncio

    info = asyncio.run(media.probe_video(out))
    assert info.duration_s > 0
    assert info.width > 0
    assert fake.submits[0]["body"]["duration"] == 10
    assert fake.api_key not in result.stdout + result.stderr


def test_generate_refuses_10s_1080p_before_any_request(fake: FakeNovita, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "generate", "x", "--duration", "10", "--resolution", "1080P"],
        cwd=tmp_path, env=env_for(fake, tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "1080P" in result.stderr
    assert fake.submits == []


def test_a_full_disk_during_download_fails_the_job_with_a_refund(tmp_path: Path) -> None:
    """The OS refuses to write past 4 MB (RLIMIT_FSIZE, as a full disk would): the 12 MB download fails,
    the job is refunded, the partial file is gone, and the runner carries on."""
    big = Timeline(queued_s=0.1, processing_s=0.3, video_bytes_target=12 * 1024 * 1024)
    with FakeNovita(default_timeline=big).threaded() as fake:
        env = env_for(fake, tmp_path)
        log = tmp_path / "deliveries.log"
        cmd = [sys.executable, "-m", "tests.support.runner_process", "--log", str(log)]
        result = subprocess.run(
            [*cmd, "--submit", "too big for the disk", "--max-file-bytes", str(4 * 1024 * 1024)],
            cwd=ROOT, env=env, timeout=90, capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    db = tmp_path / "hailuo.db"
    assert job_state(db) == "failed"
    with sqlite3.connect(db) as conn:
        error, charge = conn.execute("SELECT error, charge_state FROM jobs").fetchone()
    assert "couldn't download" in error
    assert charge == "refunded"
    assert not log.exists()
    assert list((tmp_path / "media" / "videos").glob("*")) == []


def finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_second_process_on_the_same_database_refuses_at_once_and_a_killed_one_leaves_no_lock(
    tmp_path: Path,
) -> None:
    """Two processes on one SQLite file would each resume the same jobs and pay Novita twice: the second
    refuses to start, naming the reason; the lock dies with its process, so after a SIGKILL the next start
    resumes the job, which is submitted once and delivered once."""
    # Long enough that the job is still running while both late starters are refused on a busy machine.
    with FakeNovita(default_timeline=Timeline(queued_s=0.2, processing_s=10)).threaded() as fake:
        env = env_for(fake, tmp_path)
        log = tmp_path / "deliveries.log"
        db = tmp_path / "hailuo.db"
        cmd = [sys.executable, "-m", "tests.support.runner_process", "--log", str(log)]
        first = subprocess.Popen([*cmd, "--submit", "a lighthouse in a storm"], cwd=ROOT, env=env)
        try:
            wait_for_state(db, "processing", first)
            quiet: dict[str, Any] = {"cwd": ROOT, "env": env, "stdout": PIPE, "stderr": PIPE, "text": True}
            generate = [sys.executable, "-m", "bot", "generate", "another one", "--out", str(tmp_path)]
            late = [subprocess.Popen(generate, **quiet), subprocess.Popen(cmd, **quiet)]  # both at once
            cli, runner = (finished(proc) for proc in late)
            assert first.poll() is None, "the first process ended before the others were refused"
            for refused in (cli, runner):
                assert refused.returncode != 0
                assert "Another Hailuo Bot process" in refused.stderr
                assert f"(process {first.pid})" in refused.stderr
            assert cli.returncode == 2
            assert "Traceback" not in cli.stderr  # the operator reads one message, not a stack
            assert len(fake.submits) == 1
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        resumed = subprocess.run(cmd, cwd=ROOT, env=env, timeout=60)
        assert resumed.returncode == 0
        assert job_state(db) == "delivered"
        assert len(log.read_text().splitlines()) == 1
        assert len(fake.submits) == 1
