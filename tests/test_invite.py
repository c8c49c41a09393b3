"""The invite link: exactly the permissions the README lists, both scopes, the application id (offline)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.core.bot_token import application_id_from_token, resolve_application_id, token_problem
from bot.core.settings import ConfigError, load_settings
from bot.discord_side.invite import PERMISSION_LABELS, SCOPES, invite_url, permissions

ROOT = Path(__file__).resolve().parent.parent
APP_ID = 1234567890123456789


def token_for(user_id: int, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return f"{encode(str(user_id).encode()).decode().rstrip('=')}.GhIjKl.{'x' * 38}"


def test_permission_integer_is_exactly_the_listed_permissions() -> None:
    # Discord's documented bits: VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY
    expected = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)
    assert permissions().value == expected == 117760
    assert set(PERMISSION_LABELS) == {
        "view_channel", "send_messages", "embed_links", "attach_files", "read_message_history",
    }  # fmt: skip
    assert all(getattr(permissions(), name) for name in PERMISSION_LABELS)
    assert permissions().value.bit_count() == len(PERMISSION_LABELS) == 5
    assert not permissions().use_external_emojis
    assert not permissions().administrator


def test_url_has_both_scopes_and_the_permissions() -> None:
    query = parse_qs(urlsplit(invite_url(APP_ID)).query)
    assert query["client_id"] == [str(APP_ID)]
    assert query["permissions"] == ["117760"]
    assert query["scope"][0].split() == list(SCOPES) == ["bot", "applications.commands"]
    guild = parse_qs(urlsplit(invite_url(APP_ID, guild_id=42)).query)
    assert guild["guild_id"] == ["42"]


@pytest.mark.parametrize("urlsafe", [False, True])
def test_application_id_is_read_from_the_token(urlsafe: bool) -> None:
    assert application_id_from_token(token_for(APP_ID, urlsafe)) == APP_ID
    assert application_id_from_token(token_for(80351110224678912)) == 80351110224678912  # 17 digits


@pytest.mark.parametrize("token", ["", "changeme", "not base64!.a.b", "aGVsbG8.a.b", "...."])
def test_tokens_that_do_not_encode_an_id_give_none(token: str) -> None:
    assert application_id_from_token(token) is None


def test_configured_application_id_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "DISCORD_APPLICATION_ID"):
        monkeypatch.delenv(name, raising=False)
    both = load_settings(discord_token=token_for(APP_ID), discord_application_id=999999999999999999)
    assert resolve_application_id(both) == (999999999999999999, "DISCORD_APPLICATION_ID")
    token_only = load_settings(discord_token=token_for(APP_ID))
    assert resolve_application_id(token_only) == (APP_ID, "DISCORD_TOKEN")
    with pytest.raises(ConfigError, match="DISCORD_APPLICATION_ID"):
        resolve_application_id(load_settings())


@pytest.mark.parametrize("token", ["changeme", "Bot abc.def.ghi", "abc def.ghi.jkl", "a" * 32])
def test_certainly_wrong_tokens_are_named(token: str) -> None:
    problem = token_problem(token)
    assert problem is not None
    assert problem.startswith("DISCORD_TOKEN")


def test_plausible_tokens_pass() -> None:
    assert token_problem(token_for(APP_ID)) is None


def run_bot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_prints_the_invite(tmp_path: Path) -> None:
    result = run_bot(["invite"], tmp_path, DISCORD_TOKEN=token_for(APP_ID))
    assert result.returncode == 0, result.stderr
    assert invite_url(APP_ID) in result.stdout
    assert "View Channels, Send Messages, Embed Links, Attach Files, Read Message History" in result.stdout
    assert token_for(APP_ID) not in result.stdout + result.stderr
    result = run_bot(["invite", "--guild", "42"], tmp_path, DISCORD_APPLICATION_ID=str(APP_ID))
    assert result.returncode == 0, result.stderr
    assert invite_url(APP_ID, 42) in result.stdout


def test_cli_without_an_id_says_what_to_set(tmp_path: Path) -> None:
    result = run_bot(["invite"], tmp_path)
    assert result.returncode == 2
    assert "DISCORD_APPLICATION_ID" in result.stderr


def test_a_placeholder_token_stops_the_bot_at_once_without_network(tmp_path: Path) -> None:
    result = run_bot([], tmp_path, DISCORD_TOKEN="paste-token-here", NOVITA_MODE="simulate")
    assert result.returncode == 2
    assert "DISCORD_TOKEN does not look like a bot token" in result.stderr
