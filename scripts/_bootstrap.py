"""Create `.venv` and install the project into it, once per change of pyproject.toml.

Used by `scripts/start.py` and `scripts/test.py` so that a fresh clone needs only Python 3.11+ and the package
index. Standard library only: this runs before anything is installed. Whatever goes wrong here ends in one
sentence that names the fix, not a traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
CALLER_CWD = "HAILUO_CALLER_CWD"  # where the operator ran the script (the paths they type are relative to it)

NO_VENV_PIP = (
    "This Python cannot create a virtual environment with pip (its ensurepip module is missing). "
    "On Debian or Ubuntu: sudo apt install python3-venv (or python{v}-venv), then run this again."
)
INSTALL_FAILED = (
    "pip could not install the bot's packages (its messages are above): if it could not reach the package "
    "index, check the network, or set HTTPS_PROXY or PIP_INDEX_URL, then run this again."
)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_pip(python: Path) -> bool:
    check = [str(python), "-m", "pip", "--version"]
    return subprocess.run(check, capture_output=True, cwd=ROOT).returncode == 0


def _create_venv() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if importlib.util.find_spec("ensurepip") is None:
        sys.exit(NO_VENV_PIP.format(v=version))
    print("Creating .venv ...", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    except (subprocess.CalledProcessError, OSError) as exc:
        sys.exit(f"Creating .venv failed ({exc}). " + NO_VENV_PIP.format(v=version))


def _digest(spec: str) -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()


def _installed(extra: str | None) -> bool:
    """The project is installed for this pyproject.toml with `extra`; the base needs any extra's install."""
    stamps = [VENV / f".installed-{extra or 'base'}"]
    if extra is None:
        stamps += sorted(VENV.glob(".installed-*"))
    for stamp in stamps:
        name = stamp.name.removeprefix(".installed-")
        spec = "." if name == "base" else f".[{name}]"
        if stamp.exists() and stamp.read_text() == _digest(spec):
            return True
    return False


def ensure_env(extra: str | None = None) -> Path:
    """Return the virtual environment's Python, installing the project (with `extra`) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs before anything checks the version
        sys.exit(f"Hailuo Bot needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        _create_venv()
    spec = f".[{extra}]" if extra else "."
    if not _installed(extra):
        if not _has_pip(python):  # a .venv left without pip (e.g. by a failed first try): make it again
            _create_venv()
        print(f"Installing {spec} into .venv ...", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        try:
            subprocess.run([*pip, "install", "--upgrade", "pip"], check=True, cwd=ROOT)
            subprocess.run([*pip, "install", "-e", spec], check=True, cwd=ROOT)
        except subprocess.CalledProcessError:
            sys.exit(INSTALL_FAILED)
        (VENV / f".installed-{extra or 'base'}").write_text(_digest(spec))
    return python


def run(python: Path, args: list[str], *, pass_caller_cwd: bool = False) -> int:
    """Run `python args...` in the repository root and return its exit code (signals pass through).

    The bot runs from the repository (where `.env` and `data/` are); with `pass_caller_cwd` the folder the
    operator typed the command in goes along, so the paths they give (`--image`, `--out`, a backup file)
    mean what they meant."""
    if pass_caller_cwd:
        os.environ[CALLER_CWD] = os.getcwd()
    else:
        os.environ.pop(CALLER_CWD, None)
    os.chdir(ROOT)
    if os.name == "nt":
        return subprocess.call([str(python), *args])
    os.execv(str(python), [str(python), *args])  # noqa: S606 - replaces this process: Ctrl-C goes straight to the bot
    return 0  # pragma: no cover
