"""One process per SQLite database: an OS file lock beside the database file.

Two processes on one SQLite file would each resume every unfinished job and pay Novita twice. The lock is an
advisory `flock` on `<database>.lock`, held for the life of the engine. The kernel drops it when the process
dies, however it dies (a SIGKILL included), so a crash never leaves a stale lock for the next start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # Windows has no fcntl: the lock is skipped there
    import msvcrt


class InstanceLocked(Exception):
    """Another live process holds the database; the message says so and what to do."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class InstanceLock:
    def __init__(self, database: Path, *, enabled: bool = True) -> None:
        self.database = database
        self.path = lock_path(database)
        self.enabled = enabled
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once or raise InstanceLocked (never waits)."""
        if not self.enabled or self._fd is not None or str(self.database) == ":memory:":
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (process {holder})" if holder else ""
            raise InstanceLocked(
                f"Another Hailuo Bot process{who} is already using the database {self.database}. "
                "Stop it first, or give this process its own DATABASE_PATH: two processes on one SQLite "
                "database would both send the same jobs to Novita."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or "0") or None
    return None
