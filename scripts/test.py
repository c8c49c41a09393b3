#!/usr/bin/env python3
"""Set up `.venv` with the test extra (first run only), lint and format-check with ruff, type-check with
mypy, then run the tests.

Extra arguments go to pytest: `python3 scripts/test.py -k quota -x`.
"""

import os
import subprocess
import sys

from _bootstrap import ROOT, ensure_env, run

if __name__ == "__main__":
    python = ensure_env("test")
    lint = subprocess.run([str(python), "-m", "ruff", "check", "--quiet", "."], cwd=ROOT)
    if lint.returncode != 0:
        sys.exit("ruff found problems (above); fix them or run `.venv/bin/ruff check --fix .`")
    style = subprocess.run([str(python), "-m", "ruff", "format", "--check", "--quiet", "."], cwd=ROOT)
    if style.returncode != 0:
        sys.exit("Some files are not formatted (above); run `.venv/bin/ruff format .`")
    types = subprocess.run([str(python), "-m", "mypy"], cwd=ROOT)  # bot/ and cogs/, from pyproject.toml
    if types.returncode != 0:
        sys.exit(
            "mypy found type errors (above); fix them, or justify a `# type: ignore[code]` beside the line"
        )
    args = sys.argv[1:]
    if not any(a.startswith(("-n", "--numprocesses")) or a == "no:xdist" for a in args):
        # Most of the suite waits on real processes (the bot, the fakes, PostgreSQL), so one more worker
        # than there are cores keeps every core busy; `-n 0` runs it in one process.
        args = ["-n", str(min(8, (os.cpu_count() or 1) + 1)), *args]
    sys.exit(run(python, ["-m", "pytest", *args]))
