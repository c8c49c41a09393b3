#!/usr/bin/env python3
"""Set up `.venv` (first run only) and start the bot: `python3 scripts/start.py [run|sync|check|...]`."""

import sys

from _bootstrap import ensure_env, run

if __name__ == "__main__":
    sys.exit(run(ensure_env(), ["-m", "bot", *sys.argv[1:]], pass_caller_cwd=True))
