"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` in a temporary folder, on loopback.

The server binaries come from Debian's packages where they are installed (`/usr/lib/postgresql/*/bin`), or
from `PATH`. PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster is
created and started as the unprivileged `postgres` user (or `nobody`), which owns the temporary folder.
The server is tuned for tests (no fsync): a crash of the machine loses it, which is what a test wants.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine; the message says how to install them."""


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).resolve().parent
    raise PostgresUnavailable(
        "The PostgreSQL tests need a PostgreSQL server's binaries (initdb, pg_ctl). On Debian or Ubuntu: "
        "`sudo apt-get install postgresql`."
    )


def _version_key(folder: str) -> tuple[int, ...]:
    version = Path(folder).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "Running as root and no unprivileged user (postgres, nobody) to run PostgreSQL."
    )


class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(dbname)` gives a connection URL on loopback."""

    user = "hailuo"

    def __init__(self) -> None:
        self.bin = find_bin_dir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hailuo-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as = _service_user()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._as is not None:
            kwargs["user"] = self._as.pw_uid
            kwargs["group"] = self._as.pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"},
            **kwargs,  # type: ignore[call-overload]
        )

    def start(self) -> None:
        if self._as is not None:
            os.chown(self.root, self._as.pw_uid, self._as.pw_gid)
        init = self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                         "--no-sync", "--no-instructions")  # fmt: skip
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-2000:]}")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        started = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
                            "-o", options)  # fmt: skip
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
