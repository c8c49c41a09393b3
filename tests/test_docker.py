"""Packaging: the Dockerfile, compose.yaml and .dockerignore say what the README promises; `docker build`
succeeds where a Docker engine answers (skipped, with the reason, where none does)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_runs_the_bot_as_a_non_root_user_with_a_data_volume() -> None:
    assert DOCKERFILE.startswith("#") or "FROM python:3.11-slim" in DOCKERFILE
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    assert 'VOLUME ["/app/data"]' in DOCKERFILE
    assert DOCKERFILE.rstrip().endswith('CMD ["python", "-m", "bot"]')
    assert "pip install" in DOCKERFILE


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"], ".dockerignore should allow-list, starting from '*'"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert allowed <= {"pyproject.toml", "README.md", "LICENSE", "bot/", "cogs/"}
    assert "COPY . " not in DOCKERFILE


def test_compose_uses_the_env_file_and_the_data_volume() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert re.search(r"^\s+env_file: \.env$", compose, re.MULTILINE)
    assert re.search(r"^\s+- hailuo-data:/app/data$", compose, re.MULTILINE)
    assert re.search(r"^volumes:\n\s+hailuo-data:", compose, re.MULTILINE)


def test_compose_rotates_the_log_and_checks_health_on_the_metrics_port() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert re.search(r"^\s+max-size: \"10m\"$", compose, re.MULTILINE)
    assert re.search(r"^\s+max-file: \"3\"$", compose, re.MULTILINE)
    port = re.search(r"^\s+METRICS_PORT: \"(\d+)\"$", compose, re.MULTILINE)
    assert port is not None
    assert f"http://127.0.0.1:{port.group(1)}/healthz" in compose
    assert re.search(r"^\s+healthcheck:$", compose, re.MULTILINE)


DOCKER = shutil.which("docker")


def docker_engine() -> str | None:
    """Why Docker can't be used here, or None when an engine answers."""
    if DOCKER is None:
        return "the docker command is not installed"
    try:
        info = subprocess.run([DOCKER, "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers (`docker info`: {reason})"
    return None


TOKEN_SHAPE = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl." + "t" * 38  # shaped like a bot token; never sent


def test_docker_build_succeeds() -> None:
    problem = docker_engine()
    if problem is not None:
        pytest.skip(f"docker build not run: {problem}")
    assert DOCKER is not None
    result = subprocess.run(
        [DOCKER, "build", "--tag", "hailuo-bot:test", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # As the non-root user: the data volume is writable (database opens) and the bundled ffmpeg runs.
    check = subprocess.run(
        [DOCKER, "run", "--rm", "-e", "NOVITA_MODE=simulate", "-e", f"DISCORD_TOKEN={TOKEN_SHAPE}",
         "hailuo-bot:test", "python", "-m", "bot", "check"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "database   ok" in check.stdout
    assert "ffmpeg     ok" in check.stdout


def test_compose_has_a_postgres_profile_with_postgresql_and_two_workers() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert re.search(r"^  postgres:\n    profiles: \[\"postgres\"\]", compose, re.MULTILINE)
    assert re.search(r"^  worker:\n    profiles: \[\"postgres\"\]", compose, re.MULTILINE)
    assert 'command: ["python", "-m", "bot", "worker"]' in compose
    assert re.search(r"^      replicas: 2$", compose, re.MULTILINE)
    assert re.search(r"^        required: false$", compose, re.MULTILINE)  # the gateway runs alone too
