"""`python -m bot setup` driven as a newcomer would: through its prompts on a pseudo-terminal (the token and
the key typed hidden), and without prompts for scripts. It writes a working `.env` readable by its owner only
and never replaces one without asking."""

from __future__ import annotations

import base64
import os
import select
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.preflight import startup_problems
from bot.core.settings import load_settings
from bot.discord_side.invite import invite_url

ROOT = Path(__file__).resolve().parent.parent
APP_ID = 1234567890123456789
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GhIjKl." + "s" * 38
KEY = "sk_" + "k" * 40

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")


def clean_env(cwd: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_", "MONTHLY_"))}
    env.update(PYTHONPATH=str(ROOT), HAILUO_CALLER_CWD=str(cwd), **extra)
    return env


class Terminal:
    """The setup process on a pseudo-terminal of its own (its stdin is a tty, as in a real shell)."""

    def __init__(self, cwd: Path, *args: str) -> None:
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "setup", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=clean_env(cwd), start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.seen = b""
        self.read_to = 0

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 4096)
        except OSError:  # the child closed the terminal
            return False
        self.seen += data
        return bool(data)

    def expect(self, text: str, within: float = 30) -> str:
        deadline = time.monotonic() + within
        while text.encode() not in self.seen[self.read_to :]:
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"setup never showed {text!r}; it showed:\n{self.text}")
        end = self.seen.index(text.encode(), self.read_to) + len(text)
        shown, self.read_to = self.seen[self.read_to : end], end
        return shown.decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self, within: float = 30) -> int:
        deadline = time.monotonic() + within
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.05):
            pass
        os.close(self.master)
        return self.proc.wait(5)

    @property
    def text(self) -> str:
        return self.seen.decode(errors="replace")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")  # what a clone has beside .env
    return tmp_path


def settings_in(folder: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(folder)
    for name in ("DISCORD_TOKEN", "NOVITA_API_KEY", "NOVITA_MODE", "MONTHLY_BUDGET_USD"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


def test_setup_asks_checks_and_writes_a_private_env(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    term = Terminal(folder)
    term.expect("Bot token (hidden): ")
    term.type("your-token-here")  # the placeholder a newcomer might paste
    assert "does not look like a bot token" in term.expect("Bot token (hidden): ")
    term.type(TOKEN)
    assert f"application {APP_ID}" in term.expect("Novita API key (hidden; Enter for trial mode): ")
    term.type(KEY)
    term.expect("Monthly budget per server in USD (Enter: none): ")
    term.type("25")
    assert term.finish() == 0
    assert "Wrote" in term.text
    assert invite_url(APP_ID) in term.text
    assert "python3 scripts/start.py" in term.text
    assert TOKEN not in term.text  # typed hidden: never echoed
    assert KEY not in term.text

    env = folder / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    assert f"DISCORD_TOKEN={TOKEN}\n" in text
    assert f"NOVITA_API_KEY={KEY}\n" in text
    assert "MONTHLY_BUDGET_USD=25\n" in text
    assert "# NOVITA_MODE=live" in text  # the rest of .env.example stays, documented
    settings = settings_in(folder, monkeypatch)
    assert settings.monthly_budget_usd == 25
    assert startup_problems(settings, "run") == []  # the next command starts


def test_setup_without_a_key_chooses_trial_mode(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    term = Terminal(folder)
    term.expect("Bot token (hidden): ")
    term.type(TOKEN)
    term.expect("Novita API key (hidden; Enter for trial mode): ")
    term.type("")
    assert term.finish() == 0
    assert "Monthly budget" not in term.text  # nothing is paid in trial mode
    assert "Trial mode is on" in term.text
    settings = settings_in(folder, monkeypatch)
    assert settings.novita_mode == "simulate"
    assert settings.novita_api_key is None
    assert startup_problems(settings, "run") == []


def test_setup_never_replaces_an_env_without_asking(folder: Path) -> None:
    env = folder / ".env"
    env.write_text("DISCORD_TOKEN=mine\nLOG_LEVEL=DEBUG\n")
    term = Terminal(folder)
    term.expect("Update it (its other lines are kept)? [y/N] ")
    term.type("")
    assert term.finish() == 0
    assert "Nothing was changed." in term.text
    assert env.read_text() == "DISCORD_TOKEN=mine\nLOG_LEVEL=DEBUG\n"


def test_setup_updates_an_env_keeping_its_other_lines(folder: Path) -> None:
    env = folder / ".env"
    env.write_text("DISCORD_TOKEN=old\nLOG_LEVEL=DEBUG\nNOVITA_MODE=simulate\n")
    term = Terminal(folder)
    term.expect("[y/N] ")
    term.type("y")
    term.expect("Bot token (hidden): ")
    term.type(TOKEN)
    term.expect("Enter for trial mode): ")
    term.type(KEY)
    term.expect("(Enter: none): ")
    term.type("")
    assert term.finish() == 0
    assert env.read_text().splitlines() == [
        f"DISCORD_TOKEN={TOKEN}",
        "LOG_LEVEL=DEBUG",
        "# NOVITA_MODE=",  # live again: the trial line is cleared
        "",
        f"NOVITA_API_KEY={KEY}",
    ]
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def run_script(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "setup", "--non-interactive", *args],
        cwd=folder, env=clean_env(folder, **env), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_setup_for_scripts_reads_secrets_from_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_script(folder, "--trial", "--budget", "12.5", DISCORD_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    settings = settings_in(folder, monkeypatch)
    assert (settings.novita_mode, settings.monthly_budget_usd) == ("simulate", 12.5)

    again = run_script(folder, "--trial", DISCORD_TOKEN=TOKEN)
    assert again.returncode == 2
    assert "exists already; add --force" in again.stderr
    refused = run_script(folder, "--force", DISCORD_TOKEN="your-token-here", NOVITA_API_KEY=KEY)
    assert refused.returncode == 2
    assert "DISCORD_TOKEN does not look like a bot token" in refused.stderr
    live = run_script(folder, "--force", DISCORD_TOKEN=TOKEN, NOVITA_API_KEY=KEY)
    assert live.returncode == 0, live.stderr
    settings = settings_in(folder, monkeypatch)
    assert settings.novita_mode == "live"
    assert settings.novita_api_key is not None
    assert settings.novita_api_key.get_secret_value() == KEY
