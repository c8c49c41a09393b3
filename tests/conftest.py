"""Shared fixtures. Fakes live in tests/fakes/; each test module may add its own fixtures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest

from bot.core.jobs import JobRunner
from bot.core.models import Job, JobRequest
from bot.core.novita import NovitaClient
from bot.core.settings import Settings, load_settings
from bot.core.store import SqliteStore, Store
from bot.core.store.postgres import PostgresStore
from tests.fakes.novita import FakeNovita, Timeline
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.recording_reporter import RecordingReporter

QUICK = Timeline(queued_s=0.1, processing_s=0.4)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for tests: data under tmp_path, quick polling, no .env from the developer's checkout."""
    monkeypatch.chdir(tmp_path)
    return load_settings(
        discord_token="test-discord-token",
        novita_api_key="test-novita-key",
        database_path=tmp_path / "hailuo.db",
        media_dir=tmp_path / "media",
        poll_min_s=0.05,
        poll_first_s=0.1,
        poll_max_s=0.5,
        novita_rate_per_minute=600,
        novita_request_timeout_s=5,
        novita_balance_pause_s=0.3,
    )


@pytest.fixture
def relaxed(settings: Settings) -> Settings:
    """Settings whose caps and quota never get in the way of a test that makes many jobs."""
    settings.user_max_concurrent = 100
    settings.guild_max_concurrent = 100
    settings.default_quota_credits = 100
    return settings


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = SqliteStore(settings.database_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def sqlite_store(settings: Settings) -> AsyncIterator[Store]:
    """For tests of what only the SQLite engine does (its file, its one thread), in modules whose `store`
    runs on both engines."""
    s = SqliteStore(settings.database_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole run, started on first use."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the test server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def contract_store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """The same store tests on both engines: the SQLite file, and a real PostgreSQL server."""
    s: Store
    if request.param == "postgres":
        s = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        s = SqliteStore(settings.database_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@dataclass
class Env:
    """A runner against the fake Novita over loopback, with a console reporter: `env.run(request)`."""

    fake: FakeNovita
    runner: JobRunner
    store: Store
    reporter: RecordingReporter
    settings: Settings
    http: aiohttp.ClientSession

    async def run(self, request: JobRequest, within: float = 20) -> Job:
        job, decision = await self.runner.submit(request)
        assert job is not None, str(decision.message)
        self.runner.start_job(job.id)
        return await self.runner.wait_settled(job.id, within)


@pytest.fixture
async def env(settings: Settings, store: Store) -> AsyncIterator[Env]:
    async with FakeNovita(default_timeline=QUICK) as fake, aiohttp.ClientSession() as http:
        novita = NovitaClient(
            http, base_url=fake.base_url, api_key=fake.api_key, backoff_base=0.01, request_timeout=2
        )
        reporter = RecordingReporter()
        runner = JobRunner(store=store, settings=settings, novita=novita, http=http, reporter=reporter)
        await runner.start()
        try:
            yield Env(fake, runner, store, reporter, settings, http)
        finally:
            await runner.stop(grace=0)
