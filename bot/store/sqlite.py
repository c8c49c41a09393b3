"""The embedded default: one SQLite file through sqlite-utils, its schema and migrations.

One worker thread owns the connection, so there is exactly one writer: a check-then-write inside one
transaction (`admit`) is atomic against every concurrent request. The file is in WAL mode, durable across a
crash of the process (`synchronous = NORMAL`), and waits out locks held by other connections (a backup) under
a 10-second busy timeout. Only one process may drive jobs from a file (`bot/instance_lock.py`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .core import Store
from .tx import SqliteTx, Tx
from .worker import Worker

migrations = Migrations("hailuo")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL,
            guild_id INTEGER, channel_id INTEGER, user_id INTEGER NOT NULL, user_name TEXT,
            role_ids TEXT NOT NULL DEFAULT '[]',
            entry TEXT NOT NULL DEFAULT 'slash',
            prompt TEXT NOT NULL, camera TEXT,
            duration INTEGER NOT NULL, resolution TEXT NOT NULL, prompt_expansion INTEGER NOT NULL,
            image_url TEXT, image_path TEXT, image_name TEXT,
            parent_job_id INTEGER, source_message_id INTEGER,
            application_id INTEGER, interaction_token TEXT, token_expires_at TEXT,
            card_channel_id INTEGER, card_message_id INTEGER,
            result_channel_id INTEGER, result_message_id INTEGER, delivered_via TEXT,
            credits INTEGER NOT NULL, cost_usd REAL NOT NULL, charge_state TEXT NOT NULL,
            period_start TEXT,
            task_id TEXT, novita_status TEXT, progress REAL, eta_s REAL, polls INTEGER NOT NULL DEFAULT 0,
            video_path TEXT, video_bytes INTEGER, reencoded INTEGER NOT NULL DEFAULT 0,
            error TEXT, error_detail TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            submitted_at TEXT, finished_at TEXT, delivered_at TEXT, deadline_at TEXT,
            simulated INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX jobs_state ON jobs(state)")
    db.execute("CREATE INDEX jobs_guild_user_created ON jobs(guild_id, user_id, created_at)")
    db.execute("CREATE INDEX jobs_guild_created ON jobs(guild_id, created_at)")
    db.execute("CREATE UNIQUE INDEX jobs_task ON jobs(task_id) WHERE task_id IS NOT NULL")
    # The audit trail: one row per transition (and per notable event) with its time.
    db.execute(
        """
        CREATE TABLE job_events (
            id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id),
            state TEXT NOT NULL, at TEXT NOT NULL, detail TEXT
        )
        """
    )
    db.execute("CREATE INDEX job_events_job ON job_events(job_id)")
    # Every credit movement; for each job: reserved = charged + refunded once it has ended.
    db.execute(
        """
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY, guild_id INTEGER, user_id INTEGER NOT NULL, job_id INTEGER,
            kind TEXT NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund', 'grant')),
            credits INTEGER NOT NULL, usd REAL NOT NULL DEFAULT 0, at TEXT NOT NULL,
            actor_id INTEGER, note TEXT
        )
        """
    )
    db.execute("CREATE INDEX ledger_job ON ledger(job_id)")
    db.execute("CREATE INDEX ledger_guild_user_at ON ledger(guild_id, user_id, at)")
    # Moderator policy. NULL means "inherit the default"; -1 credits means unlimited; 0 blocks.
    db.execute(
        """
        CREATE TABLE guild_settings (
            guild_id INTEGER PRIMARY KEY,
            quota_credits INTEGER, quota_period TEXT, budget_usd REAL,
            user_max_concurrent INTEGER, guild_max_concurrent INTEGER,
            mod_role_id INTEGER, modlog_channel_id INTEGER, spoiler INTEGER NOT NULL DEFAULT 0,
            allowed_channels TEXT NOT NULL DEFAULT '[]', blocklist TEXT NOT NULL DEFAULT '[]',
            updated_at TEXT, updated_by INTEGER
        )
        """
    )
    db.execute(
        "CREATE TABLE role_limits (guild_id INTEGER NOT NULL, role_id INTEGER NOT NULL, "
        "credits INTEGER NOT NULL, PRIMARY KEY (guild_id, role_id))"
    )
    db.execute(
        "CREATE TABLE member_policy (guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, "
        "credits INTEGER, blocked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (guild_id, user_id))"
    )
    db.execute(
        "CREATE TABLE policy_changes (id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL, "
        "actor_id INTEGER, change TEXT NOT NULL, at TEXT NOT NULL)"
    )


@migrations()
def m002_moderation(db: Database) -> None:
    """Moderator policy beyond m001: per-member concurrent cap, a per-member usage reset marker (see
    `quota.effective_period_start`), a per-server credit cost table, and indexes for the reports."""
    db.execute("ALTER TABLE member_policy ADD COLUMN max_concurrent INTEGER")
    db.execute("ALTER TABLE member_policy ADD COLUMN usage_reset_at TEXT")
    db.execute("ALTER TABLE guild_settings ADD COLUMN credit_table TEXT")  # JSON {"768P/6": 1, ...}
    db.execute("CREATE INDEX jobs_guild_state ON jobs(guild_id, state)")
    db.execute("CREATE INDEX policy_changes_guild_at ON policy_changes(guild_id, at)")


@migrations()
def m003_prepare_attempts(db: Database) -> None:
    """How many times the runner began preparing a job's image: a picture that kills the process while it
    is decoded must not be tried again on every restart forever."""
    db.execute("ALTER TABLE jobs ADD COLUMN prepare_attempts INTEGER NOT NULL DEFAULT 0")


@migrations()
def m004_models(db: Database) -> None:
    """The video model of each job and its last frame (see bot/video_models.py); the models a server allows
    (a JSON list of model keys; NULL: all of them, including models added later)."""
    db.execute("ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT 'hailuo-02'")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_url TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_path TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN last_frame_name TEXT")
    db.execute("ALTER TABLE guild_settings ADD COLUMN allowed_models TEXT")


@migrations()
def m005_leases(db: Database) -> None:
    """Leases (which process drives a job) and the Novita pacing every process shares."""
    db.execute("ALTER TABLE jobs ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN lease_until TEXT")
    db.execute("CREATE INDEX jobs_state_lease ON jobs(state, lease_until)")
    db.execute(
        "CREATE TABLE novita_submits (id INTEGER PRIMARY KEY, at TEXT NOT NULL, job_id INTEGER, owner TEXT)"
    )
    db.execute("CREATE INDEX novita_submits_at ON novita_submits(at)")
    db.execute("CREATE TABLE runner_pauses (name TEXT PRIMARY KEY, until TEXT NOT NULL, detail TEXT)")


class SqliteStore(Store):
    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def describe(self) -> str:
        return f"SQLite {self.path}"

    async def open(self) -> None:
        worker: Worker[Tx] = Worker(self._connect, _close, threads=1)
        try:
            await asyncio.to_thread(worker.wait_ready)
        except BaseException:
            await asyncio.to_thread(worker.shutdown)
            raise
        self._worker = worker

    def _connect(self) -> Tx:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=10)
        db = Database(conn, execute_plugins=False)
        db.execute("PRAGMA busy_timeout = 10000")
        if str(self.path) != ":memory:":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process in WAL mode
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
        return SqliteTx(db)


def _close(tx: Tx) -> None:
    assert isinstance(tx, SqliteTx)
    tx.db.close()
