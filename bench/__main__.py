"""`python -m bench [--quick] [--only quota,polling,load,memory,postgres] [--json FILE]`: run, print a table.

Run from the repository root with the project and its test extra installed (`.venv`, as scripts/test.py
makes it). Everything runs on loopback against the in-repo fakes; the run stops by itself (an overall
watchdog ends every child process and exits if a section overruns).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable

SECTIONS = ("quota", "polling", "load", "memory", "postgres")
MIB = 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a sanity run of about 3.5 minutes")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures as JSON")
    parser.add_argument("--ffmpeg-nice", type=int, metavar="N",
                        help="experiment: run the bot's ffmpeg at nice N in the memory section")  # fmt: skip
    parser.add_argument("--time-limit", type=float, default=None,
                        help="overall limit in seconds (default 1200, or 480 with --quick)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        print(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    try:
        import psutil  # noqa: F401 - the one dependency beyond the bot's own (the test extra)
    except ImportError:
        print("The benchmark needs psutil: pip install -e '.[test]'", file=sys.stderr)
        return 2

    from bench import latency, memory, polling, postgres, quota, report
    from bench.common import (
        Deadline,
        Section,
        kill_children,
        machine_info,
        remove_video_scratch,
        start_watchdog,
    )

    quick = args.quick
    watchdog = start_watchdog(args.time_limit or (480 if quick else 1200))
    plans: dict[str, tuple[float, Callable[[Deadline], Section]]] = {
        "quota": (120, lambda d: quota.run(
            quota.QuotaConfig(default_credits=5, budget_usd=20) if quick else
            quota.QuotaConfig(default_credits=40, budget_usd=120), d)),
        "polling": (240, lambda d: polling.run(
            polling.PollingConfig(tasks=30, scale=0.04, arrival_window_s=30) if quick else
            polling.PollingConfig(tasks=200, scale=0.1), d)),
        "load": (480, lambda d: latency.run(
            latency.LoadConfig(
                levels=(0, 20, 50, 100), batch=15, steady_s=5, completion_s=(30, 45), min_completions=15
            ) if quick
            else latency.LoadConfig(), d)),
        "memory": (240, lambda d: memory.run(
            memory.MemoryConfig(video_bytes=(20 if quick else 100) * MIB, ffmpeg_nice=args.ffmpeg_nice), d)),
        "postgres": (300 if quick else 480, lambda d: postgres.run(
            postgres.PostgresConfig(in_flight=300, batch=30, steady_s=5, takeovers=3, admit_seconds=3,
                                    default_credits=5) if quick
            else postgres.PostgresConfig(), d)),
    }  # fmt: skip
    started = time.monotonic()
    sections: list[Section] = []
    try:
        for number, name in enumerate(chosen, start=1):
            budget, fn = plans[name]
            print(f"[{number}/{len(chosen)}] {name} … ({time.monotonic() - started:.0f} s)", file=sys.stderr,
                  flush=True)  # fmt: skip
            t0 = time.monotonic()
            try:
                section = fn(Deadline(budget, name))
            except Exception as exc:
                traceback.print_exc()
                section = Section(name, error=f"{type(exc).__name__}: {exc}")
            section.seconds = time.monotonic() - t0
            sections.append(section)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping child processes", file=sys.stderr)
        kill_children()
        return 130
    finally:
        watchdog.cancel()
        kill_children()
        remove_video_scratch()
    elapsed = time.monotonic() - started
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    machine = machine_info()
    print(report.table(sections, machine, command, elapsed))
    if args.json:
        payload = {
            "command": command, "machine": machine, "elapsed": elapsed,
            "sections": [
                {"name": s.name, "seconds": s.seconds, "error": s.error, "data": s.data, "notes": s.notes,
                 "figures": [f.__dict__ | {"verdict": f.verdict} for f in s.figures]}
                for s in sections
            ],
        }  # fmt: skip
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1, default=str)
    failed = any(s.error for s in sections) or any(f.ok is False for s in sections for f in s.figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
