"""The first run of scripts/start.py explains itself: a Python that cannot make a virtual environment with
pip, or a package index out of reach, is one sentence naming the fix (no traceback); and the paths an
operator types (`--image`, `--out`) are read from the folder they typed them in."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.builders import png

ROOT = Path(__file__).resolve().parent.parent
HIDE_ENSUREPIP = (
    "import runpy, sys; sys.modules['ensurepip'] = None; sys.argv = ['scripts/start.py', 'check']; "
    "sys.path.insert(0, 'scripts'); runpy.run_path('scripts/start.py', run_name='__main__')"
)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A repository with the real bootstrap scripts and a tiny project of its own (no .venv yet)."""
    (tmp_path / "scripts").mkdir()
    for name in ("_bootstrap.py", "start.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "probe"\nversion = "0"\n'
    )
    return tmp_path


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("PIP_")}
    with socket.socket() as sock:  # a loopback port nobody listens on: the "package index"
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no configured index or mirror
        PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple",
        PIP_RETRIES="0",
        PIP_TIMEOUT="5",
        NO_PROXY="*",
    )
    return env


def test_a_python_without_ensurepip_is_told_to_install_python3_venv(clone: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", HIDE_ENSUREPIP], cwd=clone, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "sudo apt install python3-venv" in result.stderr
    assert not (clone / ".venv").exists()


def test_a_venv_left_without_pip_is_detected(clone: Path) -> None:
    venv.EnvBuilder(with_pip=False).create(clone / ".venv")  # what a failed first try on Debian leaves
    result = subprocess.run(
        [sys.executable, "-c", HIDE_ENSUREPIP], cwd=clone, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ensurepip module is missing" in result.stderr
    assert "python3-venv" in result.stderr


def test_an_unreachable_package_index_is_one_sentence(clone: Path) -> None:
    result = subprocess.run(
        [sys.executable, "scripts/start.py", "check"],
        cwd=clone, env=offline_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert "CalledProcessError" not in result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pip could not install the bot's packages (its messages are above)")
    assert "PIP_INDEX_URL" in last


def test_generate_reads_and_writes_paths_relative_to_the_callers_folder(tmp_path: Path) -> None:
    caller = tmp_path / "my folder"
    caller.mkdir()
    (caller / "first.png").write_bytes(png())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_", "HAILUO_"))}
    env.update(
        NOVITA_MODE="simulate",  # trial mode: a real small video, made locally
        DATABASE_PATH=str(tmp_path / "data" / "hailuo.db"),
        MEDIA_DIR=str(tmp_path / "data" / "media"),
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "start.py"), "generate", "a slow zoom",
         "--image", "first.png", "--out", "clip.mp4", "--timeout", "120"],
        cwd=caller, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    video = caller / "clip.mp4"
    assert video.read_bytes()[4:8] == b"ftyp"
    assert not (ROOT / "clip.mp4").exists()
