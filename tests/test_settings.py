"""Settings: defaults, parsing, secrets kept secret, and a fast clear stop when something is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.settings import ConfigError, Period, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(
            (
                "DISCORD_",
                "NOVITA_",
                "DEFAULT_",
                "POLL_",
                "CREDIT_",
                "PRICE_",
                "LOG_",
                "MODEL_",
                "SHARD_",
                "DATABASE_",
            )
        ):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_follow_the_product_card() -> None:
    s = load_settings()
    assert s.novita_base_url == "https://api.novita.ai"
    assert s.novita_image_fields == ("image",)  # a data URI goes in `image`; `image_url` takes URLs only
    assert s.default_quota_credits == 5
    assert s.default_quota_period == Period.DAY
    assert s.user_max_concurrent == 2
    assert s.guild_max_concurrent == 10
    assert s.job_deadline_minutes == 30
    assert s.credits_for("768P", 6) == 1
    assert s.credits_for("768P", 10) == 2
    assert s.credits_for("1080P", 6) == 2
    assert s.price_for("1080P", 6) == pytest.approx(0.49)


def test_env_file_is_read_and_tables_merge_with_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=abc.def.ghi\nCREDIT_TABLE=1080P/6=3\nNOVITA_IMAGE_FIELDS=image\nNOVITA_BASE_URL=http://x/\n"
    )
    s = load_settings()
    assert s.credit_table[("1080P", 6)] == 3
    assert s.credit_table[("768P", 10)] == 2  # untouched entries keep their default
    assert s.novita_image_fields == ("image",)
    assert s.novita_base_url == "http://x"


def test_secrets_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "super-secret-token-123")
    monkeypatch.setenv("NOVITA_API_KEY", "sk_secret_key_456")
    s = load_settings()
    assert "super-secret-token-123" not in repr(s) + str(s)
    assert "sk_secret_key_456" not in repr(s) + str(s)
    assert s.discord_token is not None
    assert s.discord_token.get_secret_value() == "super-secret-token-123"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("NOVITA_RATE_PER_MINUTE", "lots"),
        ("NOVITA_BASE_URL", "api.novita.ai"),
        ("NOVITA_IMAGE_FIELDS", "picture"),
        ("CREDIT_TABLE", "720P/6=1"),
        ("DEFAULT_QUOTA_PERIOD", "fortnight"),
    ],
)
def test_malformed_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert var in str(info.value)


def test_require_names_the_missing_variable_and_how_to_get_it() -> None:
    s = load_settings()
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN is not set\. .*developers"):
        s.require("discord_token")


def _run_bot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_start_without_discord_token_stops_at_once_naming_it(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run_bot([], {}, tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "DISCORD_TOKEN" in result.stderr
    assert elapsed < 20  # "within seconds" (generous: shared machines)


def test_start_with_malformed_value_names_it(tmp_path: Path) -> None:
    result = _run_bot([], {"DISCORD_TOKEN": "x", "NOVITA_API_KEY": "y", "POLL_MIN_S": "-1"}, tmp_path)
    assert result.returncode != 0
    assert "POLL_MIN_S" in result.stderr


def test_check_reports_ok_without_network(tmp_path: Path) -> None:
    token = (
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl." + "t" * 38
    )  # the shape of a bot token (id 1234567890123456789)
    env = {
        "DISCORD_TOKEN": token,
        "NOVITA_API_KEY": "k" * 30,
        "DATABASE_PATH": str(tmp_path / "db.sqlite"),
    }
    result = _run_bot(["check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "All good." in result.stdout
    assert token not in result.stdout + result.stderr


def test_per_model_credits_and_prices_fall_back_to_the_base_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core import video_models

    monkeypatch.setenv("MODEL_CREDIT_TABLE", "hailuo-2.3:1080P/6=3, hailuo-2.3-fast:768P/6=1")
    monkeypatch.setenv("MODEL_PRICE_TABLE", "hailuo-2.3:1080P/6=0.8")
    s = load_settings()
    assert video_models.credits(s, "hailuo-2.3", "1080P", 6) == 3
    assert video_models.credits(s, "hailuo-2.3", "768P", 10) == 2  # not given: Hailuo-02's table
    assert video_models.credits(s, "hailuo-02", "1080P", 6) == 2
    assert video_models.price(s, "hailuo-2.3", "1080P", 6) == pytest.approx(0.8)
    assert video_models.price(s, "hailuo-2.3-fast", "768P", 6) == pytest.approx(0.28)


@pytest.mark.parametrize("value", ["hailuo-9:768P/6=1", "hailuo-2.3:720P/6=1", "768P/6=1"])
def test_a_malformed_model_table_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MODEL_CREDIT_TABLE", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "MODEL_CREDIT_TABLE" in str(info.value)


def test_shard_settings_are_optional_and_read_as_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.shard_count, s.shard_ids, s.shard_problem) == (None, None, None)
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("SHARD_IDS", " 3, 1,1 ")
    s = load_settings(database_url="postgresql://u:p@127.0.0.1:5432/db")
    assert (s.shard_count, s.shard_ids) == (4, (1, 3))
    assert s.shard_problem is None  # the other shards run in other processes on the same PostgreSQL
    assert load_settings(shard_ids="").shard_ids is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHARD_IDS": "0,1"}, r"^SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT"),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "0,2,3"},
            r"^SHARD_IDS lists shards 2, 3, but with SHARD_COUNT=2 ",
        ),
        ({"SHARD_COUNT": "1", "SHARD_IDS": "1"}, r"^SHARD_IDS lists shard 1, .* only shard 0 exists"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "zero"}, r"^SHARD_IDS is malformed: .*'zero'"),
        ({"SHARD_COUNT": "0"}, r"^SHARD_COUNT is malformed: .*greater than or equal to 1"),
    ],
)
def test_shard_settings_that_cannot_work_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_all_shards_in_one_process_work_on_sqlite_but_some_of_them_do_not() -> None:
    assert load_settings(shard_count=2).shard_problem is None
    assert load_settings(shard_count=2, shard_ids="1,0").shard_problem is None
    problem = load_settings(shard_count=2, shard_ids="1").shard_problem
    assert problem is not None
    assert problem.startswith("SHARD_IDS=1 leaves the other shards of SHARD_COUNT=2 to another process")
    assert "DATABASE_URL" in problem


def test_check_reports_shards_that_sqlite_cannot_share(tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": "t" * 30,
        "NOVITA_API_KEY": "k" * 30,
        "DATABASE_PATH": str(tmp_path / "db.sqlite"),
        "SHARD_COUNT": "2",
        "SHARD_IDS": "0",
    }
    result = _run_bot(["check"], env, tmp_path)
    assert result.returncode == 1
    assert "SHARD_IDS=0 leaves the other shards of SHARD_COUNT=2" in result.stderr
