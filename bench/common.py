"""Shared pieces: figures and statistics, deadlines, child-process bookkeeping, process memory and CPU."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


# Figures ------------------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One row of the table: what was measured, the target it answers (if any) and whether it is met."""

    name: str
    measured: str
    target: str = "—"
    ok: bool | None = None  # None: informational, no target
    bound: str = ""  # what physically limits this figure

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "MISS")


@dataclass
class Section:
    name: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers, for --json

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def secs(seconds: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.{digits}f} s"


def mbytes(n: float) -> str:
    return "n/a" if math.isnan(n) else f"{n / MB:.1f} MB"


class Deadline:
    """A wall-clock budget; `left()` for timeouts, `check()` raises when it is spent."""

    def __init__(self, seconds: float, what: str) -> None:
        self.end = time.monotonic() + seconds
        self.what = what

    def left(self, cap: float | None = None) -> float:
        left = max(0.0, self.end - time.monotonic())
        return left if cap is None else min(cap, left)

    def check(self) -> None:
        if time.monotonic() >= self.end:
            raise TimeoutError(f"{self.what}: time budget spent")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it is truthy (returned) or `timeout` passes (TimeoutError)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# Child processes ----------------------------------------------------------------------------------------
_CHILDREN: set[subprocess.Popen[Any]] = set()
_CHILDREN_LOCK = threading.Lock()


def track(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Remember a child process so the watchdog and the final cleanup can end it."""
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    return proc


def untrack(proc: subprocess.Popen[Any]) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.discard(proc)


_CLEANUPS: list[Callable[[], None]] = []


def add_cleanup(fn: Callable[[], None]) -> None:
    """Run `fn` when the children are ended (the watchdog, an interrupt): for servers that daemonise and so
    are no child of ours (PostgreSQL's pg_ctl)."""
    with _CHILDREN_LOCK:
        _CLEANUPS.append(fn)


def remove_cleanup(fn: Callable[[], None]) -> None:
    with _CHILDREN_LOCK, contextlib.suppress(ValueError):
        _CLEANUPS.remove(fn)


def kill_children() -> None:
    """End every tracked child (and its own children, e.g. ffmpeg), by process id; then run the cleanups."""
    with _CHILDREN_LOCK:
        procs = list(_CHILDREN)
        cleanups = list(_CLEANUPS)
    for proc in procs:
        if proc.poll() is not None:
            continue
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    for fn in cleanups:
        with contextlib.suppress(Exception):
            fn()


def remove_video_scratch() -> None:
    """tests/fakes/videos.py makes a scratch folder per importing process; remove ours when done."""
    videos = sys.modules.get("tests.fakes.videos")
    scratch = getattr(videos, "_CACHE", None)
    if isinstance(scratch, Path) and scratch.name.startswith("hailuo-fake-videos-"):
        shutil.rmtree(scratch, ignore_errors=True)


def start_watchdog(seconds: float) -> threading.Timer:
    """After `seconds`, kill every child and exit: the bench always stops by itself."""

    def fire() -> None:
        print(f"\nbench: the overall limit of {seconds:.0f}s was reached; stopping.", file=sys.stderr)
        kill_children()
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


# Process sampling ---------------------------------------------------------------------------------------
def _status_kb(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss(pid: int) -> int | None:
    """The kernel's resident-set high-water mark (VmHWM) in bytes: exact, whatever the sampling rate."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb * 1024


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/PID/clear_refs). False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class ProcWatch:
    """Samples a process's RSS (and its children's, e.g. ffmpeg) in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (monotonic, rss)
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procwatch", daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.proc.memory_info().rss))
                for child in self.proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.child_peak = max(self.child_peak, child.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def max_rss(self, start: float = 0.0, end: float = math.inf) -> int:
        window = [rss for at, rss in self.samples if start <= at <= end]
        return max(window) if window else 0

    def cpu_seconds(self) -> float:
        times = self.proc.cpu_times()
        return times.user + times.system


# The bot's database, read from outside -------------------------------------------------------------------
class Database:
    """Read-only queries on the bot's database: its SQLite file (WAL: readers never block the bot) or its
    PostgreSQL database (autocommit: every query sees what is committed). SQL is written with `?` marks."""

    def __init__(self, *, path: Path | None = None, url: str | None = None) -> None:
        if (path is None) == (url is None):
            raise ValueError("give the SQLite path or the PostgreSQL URL")
        self.path = path
        self.url = url
        self._conn: Any = None

    @property
    def engine(self) -> str:
        return "postgres" if self.url else "sqlite"

    def _connection(self) -> Any:
        if self._conn is None:
            if self.url is not None:
                import psycopg

                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            else:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        return self._conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.url is not None:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return list(self._connection().execute(sql, list(params)).fetchall())

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


# Machine ------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpus": str(os.cpu_count() or "?"),
        "cpu": cpu,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "load": load,
    }
