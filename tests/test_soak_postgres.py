"""Soak on PostgreSQL: 300 jobs through three processes sharing one database (one gateway, two workers), with
random Novita and Discord faults, workers killed (SIGKILL) and replaced, and the gateway killed and restarted.

Short leases (JOB_LEASE_S=2) make every killed process's jobs be taken over within seconds. Afterwards, read
from PostgreSQL and the fakes: every job rests with its credits settled (charged only for a video made), no
prompt made two Novita tasks, every delivered video was posted once, the per-minute submit limit held for
the three processes together (counted where Novita counts, by the fake's clock), and jobs really did change
hands, some of them from a killed process.
"""

from __future__ import annotations

import collections
import random
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.harness import BotProcess, World, running_world
from tests.support.soak import (
    UNCAPPED,
    JobRow,
    LedgerRow,
    all_final,
    assert_delivered_once,
    assert_failures_told,
    assert_no_prompt_created_twice,
    assert_settled_and_balanced,
    most_in_any_window,
    random_fault,
)

pytestmark = pytest.mark.e2e

JOBS = 300
RATE_PER_MINUTE = 120  # low enough that the jobs come faster: the limit binds for the three processes
# Before which job each process is killed: workers killed are replaced at once, the gateway is restarted.
KILL_WORKER_AT = (60, 170, 250)
KILL_GATEWAY_AT = 120


def job_rows(url: str) -> list[JobRow]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, state, charge_state FROM jobs ORDER BY id").fetchall()
    return [(int(i), str(s), str(c)) for i, s, c in rows]


def ledger_rows(url: str) -> list[LedgerRow]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT job_id, kind, credits FROM ledger WHERE job_id IS NOT NULL").fetchall()
    return [(int(j), str(k), int(c)) for j, k, c in rows]


def job_histories(url: str) -> dict[int, list[tuple[str, str | None]]]:
    """Each job's events in order: (state, detail); a 'claimed' event's detail is the claiming process."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT job_id, state, detail FROM job_events ORDER BY id").fetchall()
    histories: dict[int, list[tuple[str, str | None]]] = collections.defaultdict(list)
    for job_id, state, detail in rows:
        histories[int(job_id)].append((str(state), detail))
    return histories


def pid_of(owner: str) -> int:
    """The process id in a lease owner's name (host:pid:nonce)."""
    return int(owner.rsplit(":", 2)[1])


def takeovers(histories: dict[int, list[tuple[str, str | None]]]) -> list[tuple[int, str, str, str]]:
    """Every change of hands: (job, previous owner, new owner, the job's state when it was taken)."""
    found = []
    for job_id, events in histories.items():
        owner, state = None, "accepted"
        for event, detail in events:
            if event != "claimed":
                state = event
                continue
            assert detail is not None
            if owner is not None and detail != owner:
                found.append((job_id, owner, detail, state))
            owner = detail
    return found


def failed_by_survivors(
    url: str, histories: dict[int, list[tuple[str, str | None]]], killed: set[int]
) -> list[tuple[int, int | None]]:
    """The failed jobs (id, card message id) whose last driver lived on: each had the time to tell its
    member (one whose process was killed right after the failure was written could not)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, card_message_id FROM jobs WHERE state = 'failed'").fetchall()
    survivors = []
    for job_id, card_id in rows:
        drivers = [d for e, d in histories[int(job_id)] if e == "claimed" and d]
        if drivers and pid_of(drivers[-1]) not in killed:
            survivors.append((int(job_id), None if card_id is None else int(card_id)))
    return survivors


def kill(process: BotProcess, killed: set[int]) -> None:
    assert process.proc is not None
    assert process.alive(), f"{process.log_path.name} died before its kill"
    killed.add(process.proc.pid)
    process.kill()


def test_soak_300_jobs_on_three_processes_with_faults_and_kills(tmp_path: Path, postgres_url: str) -> None:
    rng = random.Random(20261207)
    settings = {
        **UNCAPPED,
        "DATABASE_URL": postgres_url,
        "JOB_LEASE_S": "2",
        "NOVITA_MAX_IN_FLIGHT": "40",
        "NOVITA_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "NOVITA_REQUEST_TIMEOUT_S": "1",
        "JOB_DEADLINE_MINUTES": "0.15",
        "CARD_EDIT_INTERVAL_S": "0.5",
        "LOG_LEVEL": "INFO",
    }
    killed: set[int] = set()
    with running_world(tmp_path, **settings) as world:
        workers = [world.spawn_worker("worker-1"), world.spawn_worker("worker-2")]
        members = [world.discord.add_member(world.discord.guild, f"member{i}").user for i in range(10)]
        for n in range(JOBS):
            if n in KILL_WORKER_AT:
                victim = workers.pop(0)
                kill(victim, killed)
                workers.append(world.spawn_worker(f"worker-{len(world.more_bots) + 1}"))
            if n == KILL_GATEWAY_AT:
                kill(world.bot, killed)
                world.restart_bot()
            random_fault(world, rng)
            inter = world.discord.slash("video", {"prompt": f"soak #{n}"}, user=members[n % len(members)])
            inter.wait_response(timeout=5)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not all_final(job_rows(postgres_url), JOBS):
            time.sleep(0.5)
        rows = job_rows(postgres_url)
        dead = [p.log_path.name for p in (world.bot, *workers) if not p.alive()]
        assert dead == [], f"{dead} died unasked"
        for process in (world.bot, *workers):
            process.stop()

        assert_settled_and_balanced(rows, ledger_rows(postgres_url), JOBS)
        assert_no_prompt_created_twice(world.novita)
        assert_delivered_once(world, rows)
        # Novita's limit, counted by Novita: each submit it took (a 429 is its refusal, not a submit).
        submitted_at = [s["time"] for s in world.novita.submits if s["status"] != 429]
        assert most_in_any_window(submitted_at) == RATE_PER_MINUTE  # reached, never passed

        histories = job_histories(postgres_url)
        claimers = {pid_of(d) for events in histories.values() for e, d in events if e == "claimed" and d}
        assert len(claimers) > 2, "the jobs were shared by the processes"
        moves = takeovers(histories)
        assert_failures_told(world, failed_by_survivors(postgres_url, histories, killed))
        from_killed = [(job, state) for job, old, _, state in moves if pid_of(old) in killed]
        assert from_killed, "no job was taken over from a killed process"
        assert {state for _, state in from_killed} & {"submitted", "processing", "downloading", "delivering"}
        outcomes = collections.Counter(state for _, state, _ in rows)
        assert outcomes["delivered"] > JOBS // 2, outcomes
        assert outcomes["failed"] > 0, outcomes
        print_summary(world, outcomes, moves, from_killed)


def print_summary(
    world: World,
    outcomes: collections.Counter[str],
    moves: list[tuple[int, str, str, str]],
    from_killed: list[tuple[int, str]],
) -> None:
    """For `pytest -s`: what the run did (outcomes, how many jobs changed hands, in which states)."""
    print(
        f"\nsoak: {dict(outcomes)}; {len(moves)} change(s) of hands, {len(from_killed)} from killed "
        f"processes in states {dict(collections.Counter(s for _, s in from_killed))}; "
        f"{len(world.novita.submits)} submit requests"
    )
