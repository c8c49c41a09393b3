#!/usr/bin/env python3
"""Set up `.venv` with the test extra (first run only), then run the benchmark.

    python3 scripts/bench.py [--quick] [--only polling,quota,load,memory,postgres] [--json FILE]


It drives the real bot against the in-repo fakes on loopback and prints the figures of the performance
promises (docs/commands.md) next to their targets (see docs/performance.md).
"""

import sys

from _bootstrap import ensure_env, run

if __name__ == "__main__":
    sys.exit(run(ensure_env("test"), ["-m", "bench", *sys.argv[1:]]))
