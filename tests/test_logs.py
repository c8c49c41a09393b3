"""Logs: JSON lines that parse, a rotating file, secrets never written, one `job=<id>` line per transition."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import quota
from bot.core.logs import RedactSecrets, setup_logging
from bot.core.models import ChargeState, JobRequest, JobState
from bot.core.settings import Settings
from bot.core.store import Store

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.supersecret-discord-token"
KEY = "sk_live_novita_secret_key_123"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("discord", "aiohttp")}
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


def emit_everything() -> None:
    log = logging.getLogger("bot.test")
    log.info("job=7 submitted task=abc")
    log.warning("token in the message %s", TOKEN)
    log.error("key in an argument: %r", {"Authorization": f"Bearer {KEY}"})
    try:
        raise RuntimeError(f"failed with key {KEY} and token {TOKEN}")
    except RuntimeError:
        log.exception("job=7 crashed")
    log.debug("debug line job=7")


def test_json_lines_parse_and_keep_secrets_out(tmp_path: Path, restore_logging: None) -> None:
    file = tmp_path / "logs" / "bot.log"
    setup_logging("DEBUG", "json", file, [TOKEN, KEY])
    emit_everything()
    text = file.read_text()
    assert TOKEN not in text
    assert KEY not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["level"] for e in entries] == ["INFO", "WARNING", "ERROR", "ERROR", "DEBUG"]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert entries[0]["message"] == "job=7 submitted task=abc"
    assert "***" in entries[1]["message"]
    assert "RuntimeError" in entries[3]["exc"]
    assert "***" in entries[3]["exc"]


def test_text_format_and_level_filter(tmp_path: Path, restore_logging: None) -> None:
    file = tmp_path / "bot.log"
    setup_logging("WARNING", "text", file, [TOKEN, KEY])
    emit_everything()
    text = file.read_text()
    assert TOKEN not in text
    assert KEY not in text
    assert "job=7 submitted" not in text  # INFO is below WARNING
    assert "WARNING bot.test: token in the message ***" in text
    assert "Traceback" in text


def test_log_file_rotates(tmp_path: Path, restore_logging: None) -> None:
    file = tmp_path / "bot.log"
    setup_logging("INFO", "text", file)
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler))
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert handler.maxBytes > 0
    assert handler.backupCount > 0


def test_short_strings_are_not_treated_as_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a b c", None, None)
    RedactSecrets(["a", ""]).filter(record)
    assert record.getMessage() == "a b c"


async def test_every_job_transition_logs_one_line_with_the_job_id(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.store")
    job, _ = await quota.admit(store, settings, JobRequest(guild_id=1, channel_id=2, user_id=3, prompt="p"))
    assert job is not None
    path = [
        JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.PROCESSING,
        JobState.DOWNLOADING, JobState.DELIVERING, JobState.DELIVERED,
    ]  # fmt: skip
    for state in path:
        charge = ChargeState.CHARGED if state == JobState.DELIVERING else None
        before = (await store.get_job(job.id)).state  # type: ignore[union-attr]
        await store.transition(job.id, state, charge=charge, expect=(before,))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"job={job.id} state ")]
    previous = [JobState.ACCEPTED, *path[:-1]]
    assert lines == [f"job={job.id} state {a} -> {b}" for a, b in zip(previous, path, strict=True)]


def test_a_piece_of_a_secret_left_by_a_cut_is_masked_too(tmp_path: Path, restore_logging: None) -> None:
    file = tmp_path / "bot.log"
    setup_logging("INFO", "text", file, [TOKEN, KEY])
    log = logging.getLogger("bot.test")
    log.warning("detail cut at 40: %s", ("z" * 30 + KEY)[:40])  # ends with the first 10 characters of KEY
    log.warning("repr cut: %s", repr(f"token={TOKEN}")[:20])
    log.warning("a shorter coincidence stays: %s", KEY[:7])
    text = file.read_text()
    assert KEY[:8] not in text
    assert TOKEN[:8] not in text
    assert f"a shorter coincidence stays: {KEY[:7]}" in text
