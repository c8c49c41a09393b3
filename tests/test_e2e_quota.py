"""Quotas and budgets end to end: the real bot process, moderators setting limits through /quota, members
hitting them through /video and reading them through /usage. Novita is the loopback fake."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_discord import Interaction, User
from tests.fakes.novita import Timeline
from tests.support.harness import RESTING, World, running_world

pytestmark = pytest.mark.e2e


def all_rested(world: World, timeout: float = 30) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        jobs = world.rows("SELECT * FROM jobs ORDER BY id")
        return jobs if all(j["state"] in RESTING for j in jobs) else None

    return world.wait_for(check, timeout, "every job to rest")


def answer(inter: Interaction, timeout: float = 5) -> str:
    """What the member saw: the response's content and embeds, once it is no longer 'thinking'."""
    inter.wait_response(timeout)
    return inter.wait_original(lambda m: not m.loading, timeout).text


def moderator(world: World, name: str, sub: str, options: dict[str, Any] | None = None) -> str:
    inter = world.discord.slash(name, options or {}, subcommand=sub, user=world.discord.moderator)
    text = answer(inter)
    assert inter.ephemeral, text
    assert "Only moderators" not in text, text
    return text


def video(world: World, user: User, prompt: str = "a lighthouse in fog") -> Interaction:
    inter = world.discord.slash("video", {"prompt": prompt}, user=user)
    inter.wait_response()
    return inter


def test_limit_role_tier_grant_and_reset(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        alice = d.member
        supporter = d.add_role(None, "Supporter")
        bob = d.add_member(None, "bob", roles=[supporter]).user
        moderator(world, "quota", "set-default", {"credits": "1", "member_jobs": 10})

        assert not video(world, alice).ephemeral
        refused = video(world, alice, "one more please")
        assert refused.ephemeral
        assert "You have 0 of 1 left today" in refused.response.content  # remaining credits, one wording
        assert "reset <t:" in refused.response.content  # the reset time, in the member's own time zone

        # A role tier raises the limit: bob would be refused at his second video without it.
        assert "3 credits" in moderator(world, "quota", "set-role", {"role": supporter, "credits": "3"})
        assert not video(world, bob).ephemeral
        assert not video(world, bob).ephemeral

        # A grant adds credits for this period.
        assert "1 bonus credit" in moderator(world, "quota", "grant", {"member": alice, "credits": 1})
        assert not video(world, alice).ephemeral
        assert video(world, alice).ephemeral

        # A reset clears what she used this period (a marker: the jobs stay charged for the budget).
        assert "cleared" in moderator(world, "quota", "reset", {"member": alice})
        assert not video(world, alice).ephemeral
        assert video(world, alice).ephemeral
        assert "0 of 1 left today" in answer(d.slash("usage", user=alice))

        jobs = all_rested(world)
        assert len(jobs) == 5
        assert len(world.novita.created_submits) == 5  # refused requests never reached Novita
        assert {j["charge_state"] for j in jobs} == {"charged"}
        changes = world.rows("SELECT actor_id, change FROM policy_changes ORDER BY id")
        assert {c["actor_id"] for c in changes} == {d.moderator.id}
        assert [next(iter(json.loads(c["change"]))) for c in changes] == [
            "quota_credits", "role", "grant", "member",
        ]  # fmt: skip


def test_budget_stops_the_job_that_would_pass_it_and_a_failure_refunds(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.1, processing_s=0.4)
    with running_world(tmp_path, timeline=timeline) as world:
        d = world.discord
        bob = d.add_member(None, "bob").user
        assert "$0.50" in moderator(world, "quota", "budget", {"usd": 0.5})

        assert not video(world, d.member).ephemeral  # $0.28 of $0.50
        refused = video(world, bob)
        assert refused.ephemeral
        assert "budget ($0.50) would be passed" in refused.response.content
        assert "/quota budget" in refused.response.content
        usage = answer(d.slash("usage", user=bob))
        assert "$0.22 of $0.50 left this month" in usage
        all_rested(world)
        assert len(world.novita.created_submits) == 1

        # A failed job gives its credits (and budget) back, visibly.
        moderator(world, "quota", "budget", {"usd": 0})
        moderator(world, "quota", "set-default", {"credits": "2"})
        world.novita.script(Timeline(queued_s=0.1, processing_s=0.3, outcome="fail", reason="moderation"))
        assert not video(world, bob, "this one fails").ephemeral
        world.wait_for(
            lambda: world.rows("SELECT 1 FROM jobs WHERE user_id = ? AND state = 'failed'", bob.id)
        )
        usage = answer(d.slash("usage", user=bob))
        assert "2 of 2 left today" in usage
        assert "1 failed" in usage
        refunds = world.rows("SELECT credits FROM ledger WHERE user_id = ? AND kind = 'refund'", bob.id)
        assert refunds == [{"credits": 1}]


def test_fifty_concurrent_requests_from_ten_members_never_pass_a_limit(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.2, processing_s=0.8)
    with running_world(tmp_path, timeline=timeline, NOVITA_RATE_PER_MINUTE="6000") as world:
        d = world.discord
        members = [d.add_member(None, f"m{i}").user for i in range(10)]
        moderator(world, "quota", "set-default", {"credits": "1", "member_jobs": 1, "server_jobs": 4})
        moderator(world, "quota", "budget", {"usd": 1.96})  # seven 768P/6 s videos

        # Two bursts, so that each limit gets its turn: the caps bind in the first, quota and budget later.
        inters = []
        for burst in (range(30), range(30, 50)):
            sent = [d.slash("video", {"prompt": f"burst {n}"}, user=members[n % 10]) for n in burst]
            for inter in sent:
                inter.wait_response(timeout=10)
            inters += sent
            jobs = all_rested(world)

        accepted = [i for i in inters if not i.ephemeral]
        assert len(jobs) == len(accepted)
        assert len(world.novita.created_submits) == len(jobs)  # refused requests never reached Novita
        held = [j for j in jobs if j["charge_state"] != "refunded"]
        assert sum(j["cost_usd"] for j in held) <= 1.96 + 1e-9
        per_member: dict[int, int] = defaultdict(int)
        for job in held:
            per_member[job["user_id"]] += job["credits"]
        assert max(per_member.values()) <= 1
        intervals = active_intervals(world)
        assert max_overlap(list(intervals.values())) <= 4
        for member in members:
            assert max_overlap([intervals[j["id"]] for j in jobs if j["user_id"] == member.id]) <= 1
        kinds = {
            "You already have": "member busy",
            "This server already has": "server busy",
            "You have 0 of": "quota",
            "This server's monthly": "budget",
        }
        seen = [next((k for p, k in kinds.items() if i.response.content.startswith(p)), i.response.content)
                for i in inters if i.ephemeral]  # fmt: skip
        assert set(seen) == set(kinds.values()), set(seen)


def active_intervals(world: World) -> dict[int, tuple[str, str]]:
    """Each job's time holding a concurrency slot: from acceptance to its first resting state."""
    events = world.rows("SELECT job_id, state, at FROM job_events ORDER BY id")
    start: dict[int, str] = {}
    end: dict[int, str] = {}
    for e in events:
        if e["state"] == "accepted":
            start[e["job_id"]] = e["at"]
        elif e["state"] in RESTING and e["job_id"] not in end:
            end[e["job_id"]] = e["at"]
    return {job: (start[job], end[job]) for job in start}


def max_overlap(intervals: list[tuple[str, str]]) -> int:
    points = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda p: (p[0], p[1])
    )
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best
