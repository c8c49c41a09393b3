"""The store: migrations, one committed write per transition, the ledger, the worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core import quota
from bot.core.i18n import _, join, render
from bot.core.jobs import REFUNDED
from bot.core.models import ChargeState, DeliveryRoute, Entry, InvalidTransition, JobRequest, JobState
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store


@pytest.fixture
def store(contract_store: Store) -> Store:
    """Every test here that takes `store` runs on SQLite and on PostgreSQL."""
    return contract_store


async def new_job(store: Store, settings: Settings, user: int = 1, guild: int = 10):
    request = JobRequest(guild_id=guild, channel_id=20, user_id=user, prompt="a cat")
    job, decision = await quota.admit(store, settings, request)
    assert job is not None, str(decision.message)
    return job


async def test_reopen_applies_no_migration_twice_and_keeps_rows(
    sqlite_store: Store, settings: Settings
) -> None:
    job = await new_job(sqlite_store, settings)
    await sqlite_store.close()
    again = SqliteStore(settings.database_path)
    await again.open()
    try:
        assert (await again.get_job(job.id)).prompt == "a cat"
    finally:
        await again.close()
    with sqlite3.connect(settings.database_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    assert names == sorted(set(names))


async def test_transitions_are_validated_and_recorded_with_times(store: Store, settings: Settings) -> None:
    job = await new_job(store, settings)
    assert job.state == JobState.ACCEPTED
    assert job.charge_state == ChargeState.RESERVED
    with pytest.raises(InvalidTransition):
        await store.transition(job.id, JobState.DELIVERED, expect=(JobState.ACCEPTED,))
    job = await store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
    job = await store.transition(job.id, JobState.SUBMITTING, expect=(JobState.QUEUED,))
    job = await store.transition(job.id, JobState.SUBMITTED, expect=(JobState.SUBMITTING,), task_id="t-1")
    assert job.task_id == "t-1"
    events = await store.events(job.id)
    assert [e["state"] for e in events] == ["accepted", "queued", "submitting", "submitted"]
    assert all(e["at"] for e in events)
    with pytest.raises(InvalidTransition):
        await store.transition(job.id, JobState.PROCESSING, expect=(JobState.QUEUED,))


async def test_reservation_is_settled_once(store: Store, settings: Settings) -> None:
    job = await new_job(store, settings)
    job = await store.transition(
        job.id, JobState.FAILED, expect=(JobState.ACCEPTED,), charge=ChargeState.REFUNDED
    )
    assert job.charge_state == ChargeState.REFUNDED
    totals = await store.ledger_totals()
    assert totals == {"reserve": 1, "refund": 1}


async def test_every_call_runs_on_the_one_store_thread(sqlite_store: Store) -> None:
    names = set()

    def where() -> None:
        names.add(threading.current_thread().name)

    for _attempt in range(5):
        await sqlite_store._run(lambda _tx: where())
    assert len(names) == 1
    assert next(iter(names)).startswith("store")
    assert threading.current_thread().name not in names


@contextlib.asynccontextmanager
async def loop_ticks() -> AsyncIterator[list[int]]:
    """Count 10 ms ticks of the event loop while the block runs: a blocked loop stops counting."""
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    task = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()


async def test_a_slow_store_does_not_block_the_event_loop(store: Store) -> None:
    import time

    async with loop_ticks() as ticks:
        await store._run(lambda _tx: time.sleep(0.3))
    assert ticks[0] >= 10


async def test_policy_rows_round_trip(store: Store) -> None:
    await store.set_guild_settings(10, actor_id=99, quota_credits=7, allowed_channels=[1, 2])
    await store.set_role_limit(10, 555, 20, actor_id=99)
    await store.set_member_policy(10, 1, actor_id=99, blocked=True)
    rows = await store.policy(10, 1, role_ids=(555, 777))
    assert rows.guild is not None
    assert rows.guild.quota_credits == 7
    assert rows.roles == {555: 20}
    assert rows.member is not None
    assert rows.member.blocked is True
    assert (await store.guild_settings(10)).allowed_channels == (1, 2)


def test_database_path_folder_is_created(tmp_path: Path) -> None:
    async def go() -> None:
        s = SqliteStore(tmp_path / "deep" / "er" / "db.sqlite")
        await s.open()
        await s.close()

    asyncio.run(go())
    assert (tmp_path / "deep" / "er" / "db.sqlite").exists()


async def test_a_database_locked_by_another_process_delays_but_does_not_fail(
    sqlite_store: Store, settings: Settings
) -> None:
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(1.5); c.execute('COMMIT')",
         str(settings.database_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    async with loop_ticks() as ticks:
        job = await new_job(sqlite_store, settings)  # waits for the lock (busy timeout), then succeeds
    waited = time.monotonic() - started
    holder.wait(10)
    assert job.state == JobState.ACCEPTED
    assert waited > 0.5
    assert ticks[0] > 30  # the event loop kept running while the sqlite_store waited


async def test_a_members_request_goes_ahead_of_queued_background_writes(
    sqlite_store: Store, settings: Settings
) -> None:
    import time

    job = await new_job(sqlite_store, settings)
    order: list[str] = []

    def slow() -> None:
        time.sleep(0.2)  # the worker is busy while the rest queue up

    busy = asyncio.ensure_future(sqlite_store._run(lambda _tx: slow()))
    await asyncio.sleep(0.05)
    background = [asyncio.ensure_future(sqlite_store.update_job(job.id, polls=i)) for i in range(50)]
    for task in background:
        task.add_done_callback(lambda _t: order.append("background"))
    interactive = asyncio.ensure_future(sqlite_store.get_job(job.id))
    interactive.add_done_callback(lambda _t: order.append("interactive"))
    await asyncio.gather(busy, interactive, *background)
    assert order.index("interactive") == 0
    assert (await sqlite_store.get_job(job.id)).polls == 49  # background writes still ran, in order


async def test_both_engines_build_the_same_tables_and_columns(
    sqlite_store: Store, settings: Settings, postgres_url: str
) -> None:
    import psycopg

    from bot.core.store.postgres import PostgresStore

    pg = PostgresStore(postgres_url)
    await pg.open()
    await pg.close()
    with sqlite3.connect(settings.database_path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        lite = {
            (t, r[1])
            for t in tables
            if not t.startswith(("_", "sqlite"))
            for r in conn.execute(f"PRAGMA table_info({t})")
        }
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name <> 'hailuo_migrations'"
        ).fetchall()
    assert lite == set(rows)


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in ("core", "jobs", "pacing", "policy"):  # the store's query groups that read the time
        monkeypatch.setattr(f"bot.core.store.{module}.utcnow", clock)
    return clock


async def queued_job(store: Store, settings: Settings) -> int:
    job = await new_job(store, settings)
    await store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
    return job.id


async def test_a_submit_counts_against_the_minute_from_when_its_answer_came(
    store: Store, settings: Settings, clock: Clock
) -> None:
    """Novita counts a submit when it arrives, which can be well after its turn was taken: the minute runs
    from the answer (the latest moment it can have arrived), so no 60 s at Novita hold more than the rate."""
    first, second = await queued_job(store, settings), await queued_job(store, settings)
    taken, _ = await store.take_submit_turn(first, None, 1, 10)
    assert taken is not None
    clock.advance(30)  # a slow request: its answer comes half a minute after the turn
    await store.transition(first, JobState.SUBMITTED, expect=(JobState.SUBMITTING,), task_id="t-1")
    clock.advance(31)  # a minute after the turn, 31 s after the answer
    refused, wait = await store.take_submit_turn(second, None, 1, 10)
    assert refused is None
    assert wait == pytest.approx(29)
    clock.advance(29.5)
    taken, _ = await store.take_submit_turn(second, None, 1, 10)
    assert taken is not None


async def test_a_submit_still_on_the_wire_counts_however_old_its_turn(
    store: Store, settings: Settings, clock: Clock
) -> None:
    """A submit with no answer yet (a hung request, or a process killed while sending it) may reach Novita at
    any moment: it counts until it ends, and for a minute after, when another process refunds it."""
    first, second = await queued_job(store, settings), await queued_job(store, settings)
    await store.take_submit_turn(first, None, 1, 10)
    clock.advance(120)
    refused, _ = await store.take_submit_turn(second, None, 1, 10)
    assert refused is None
    await store.transition(
        first, JobState.FAILED, expect=(JobState.SUBMITTING,), charge=ChargeState.REFUNDED
    )  # taken over from a dead process: refunded, never sent again
    clock.advance(59)
    refused, wait = await store.take_submit_turn(second, None, 1, 10)
    assert refused is None
    assert wait == pytest.approx(1)
    clock.advance(1.5)
    taken, _ = await store.take_submit_turn(second, None, 1, 10)
    assert taken is not None


async def test_concurrent_changes_of_a_server_list_all_count(store: Store) -> None:
    """Ten moderators add a channel at once: each read-decide-write is one transaction, so none is lost
    (two separate calls, read then write, lost updates whenever they interleaved)."""

    def add(channel: int):
        return lambda row: ({"allowed_channels": [*row.allowed_channels, channel]}, channel)

    answers = await asyncio.gather(*(store.change_guild_settings(10, 99, add(n)) for n in range(10)))
    assert sorted(answers) == list(range(10))
    assert sorted((await store.guild_settings(10)).allowed_channels) == list(range(10))


async def test_entry_and_delivery_route_are_enums_stored_as_their_plain_values(
    store: Store, settings: Settings
) -> None:
    request = JobRequest(guild_id=10, channel_id=20, user_id=1, prompt="a cat", entry=Entry.MENTION)
    job, _decision = await quota.admit(store, settings, request)
    assert job is not None
    assert job.entry is Entry.MENTION
    chain = [JobState.ACCEPTED, JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED]
    for before, after in zip(chain, [*chain[1:], JobState.DOWNLOADING], strict=True):
        await store.transition(job.id, after, expect=(before,))
    await store.transition(job.id, JobState.DELIVERING, expect=(JobState.DOWNLOADING,))
    await store.transition(
        job.id,
        JobState.DELIVERED,
        expect=(JobState.DELIVERING,),
        delivered_via=DeliveryRoute.DM,
        detail=DeliveryRoute.DM,
    )
    again = await store.get_job(job.id)
    assert again is not None
    assert (again.entry, again.delivered_via) == (Entry.MENTION, DeliveryRoute.DM)
    assert again.delivered_via is DeliveryRoute.DM
    row = await store._run(lambda tx: tx.one("SELECT entry, delivered_via FROM jobs WHERE id = ?", [job.id]))
    assert row == {"entry": "mention", "delivered_via": "dm"}
    assert (type(row["entry"]), type(row["delivered_via"])) == (str, str)
    [report] = await store.report_rows(10)
    assert (report.entry, report.delivered_via) == (Entry.MENTION, DeliveryRoute.DM)
    events = await store.events(job.id)
    assert (events[0]["state"], events[0]["detail"]) == ("accepted", "mention")
    assert (events[-1]["state"], type(events[-1]["detail"]), events[-1]["detail"]) == ("delivered", str, "dm")


async def test_a_job_keeps_its_requesters_locale_and_a_translatable_error_on_both_engines(
    store: Store, settings: Settings
) -> None:
    request = JobRequest(guild_id=10, channel_id=20, user_id=1, prompt="a cat", locale="ja")
    job, decision = await quota.admit(store, settings, request)
    assert job is not None, str(decision.message)
    error = join(_("The video service couldn't make this video: “{reason}”.", reason="No."), REFUNDED)
    job = await store.transition(
        job.id, JobState.FAILED, expect=(JobState.ACCEPTED,), charge=ChargeState.REFUNDED, error=error.dumps()
    )
    again = await store.get_job(job.id)
    assert again is not None
    assert again.locale == "ja"
    assert again.error_text == error  # stored as msgid and parameters, rendered for each reader
    french = render(again.error_text, "fr")
    assert "« No. »" in french  # Novita's words quoted as written, inside the French sentence
    assert french != str(again.error_text)
