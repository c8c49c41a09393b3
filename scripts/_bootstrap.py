"""Create `.venv` and install the project into it, once per change of pyproject.toml.

Used by `scripts/start.py` and `scripts/test.py` so that a fresh clone needs only Python 3.11+ and the package
index. Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_env(extra: str | None = None) -> Path:
    """Return the virtual environment's Python, installing the project (with `extra`) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs before anything checks the version
        sys.exit(f"Hailuo Bot needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    spec = f".[{extra}]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = VENV / f".installed-{extra or 'base'}"
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"Installing {spec} into .venv ...", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True, cwd=ROOT)
        subprocess.run([*pip, "install", "-e", spec], check=True, cwd=ROOT)
        stamp.write_text(digest)
    return python


def run(python: Path, args: list[str]) -> int:
    """Run `python args...` in the repository root and return its exit code (signals pass through)."""
    os.chdir(ROOT)
    if os.name == "nt":
        return subprocess.call([str(python), *args])
    os.execv(str(python), [str(python), *args])  # noqa: S606 - replaces this process: Ctrl-C goes straight to the bot
    return 0  # pragma: no cover
