"""`check` runs exactly the checks a start runs: what `python -m bot` refuses, `check` refuses too, with the
same words; and `invite` names the real problem with a token it cannot read."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.preflight import startup_problems
from bot.core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
GOOD = base64.b64encode(b"1234567890123456789").decode().rstrip("=") + ".GhIjKl." + "x" * 38


def run_bot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    clean.update(PYTHONPATH=str(ROOT), DATABASE_PATH=str(cwd / "data" / "hailuo.db"), **env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("your-token-here", "DISCORD_TOKEN does not look like a bot token"),
        (f"Bot {GOOD}", "DISCORD_TOKEN must be the bare token, without spaces or a 'Bot ' prefix"),
        ("abc.def.ghi", "DISCORD_TOKEN does not look like a bot token"),
    ],
)
def test_check_refuses_what_start_refuses_with_the_same_words(
    tmp_path: Path, token: str, problem: str
) -> None:
    start = run_bot([], tmp_path, DISCORD_TOKEN=token, NOVITA_MODE="simulate")
    check = run_bot(["check"], tmp_path, DISCORD_TOKEN=token, NOVITA_MODE="simulate")
    assert start.returncode == 2
    assert problem in start.stderr
    assert check.returncode == 1
    assert "All good." not in check.stdout
    assert problem in check.stderr
    assert token not in start.stdout + start.stderr + check.stdout + check.stderr


def test_check_and_start_agree_on_a_missing_novita_key(tmp_path: Path) -> None:
    start = run_bot([], tmp_path, DISCORD_TOKEN=GOOD)
    check = run_bot(["check"], tmp_path, DISCORD_TOKEN=GOOD)
    assert start.returncode == 2
    assert check.returncode == 1
    assert "NOVITA_API_KEY is not set" in start.stderr
    assert "NOVITA_API_KEY is not set" in check.stderr


def test_check_passes_a_well_formed_configuration(tmp_path: Path) -> None:
    check = run_bot(["check"], tmp_path, DISCORD_TOKEN=GOOD, NOVITA_MODE="simulate")
    assert check.returncode == 0, check.stderr
    assert "All good." in check.stdout


def test_invite_with_a_placeholder_token_names_the_token(tmp_path: Path) -> None:
    result = run_bot(["invite"], tmp_path, DISCORD_TOKEN="your-token-here")
    assert result.returncode == 2
    assert "DISCORD_TOKEN does not look like a bot token" in result.stderr
    assert "Set DISCORD_APPLICATION_ID (or DISCORD_TOKEN)" not in result.stderr


@pytest.mark.parametrize(
    ("command", "mode", "expected"),
    [
        ("run", "live", {"DISCORD_TOKEN", "NOVITA_API_KEY"}),
        ("check", "live", {"DISCORD_TOKEN", "NOVITA_API_KEY"}),
        ("run", "simulate", {"DISCORD_TOKEN"}),
        ("sync", "live", {"DISCORD_TOKEN"}),
        ("generate", "live", {"NOVITA_API_KEY"}),
        ("generate", "simulate", set()),
    ],
)
def test_each_command_needs_what_it_uses(
    command: str, mode: str, expected: set[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "NOVITA_API_KEY", "NOVITA_MODE"):
        monkeypatch.delenv(name, raising=False)
    problems = startup_problems(load_settings(novita_mode=mode), command)
    assert {p.split()[0] for p in problems} == expected
