"""Credit reservations per second with 50 members asking at once, and proof that nobody overspends.

In this process: one `Store` on a real SQLite file (WAL, its single worker thread, as in the bot), and
`bot.core.quota.admit` called by 50 members, two requests in flight per member at all times, until each has
made more attempts than its credits allow. Two servers: in the first only the members' quotas bind (a mix
of the default, role limits, member overrides and bonus grants); in the second a monthly USD budget binds
first. Jobs cost 1 or 2 credits (768P 6 s / 768P 10 s / 1080P 6 s).

Afterwards the database is checked through its own connection against allowances computed here, not by
quota.py: no member reserved more than its allowance, the budgeted server spent no more than its budget,
and the ledger's reservations match the jobs.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import Deadline, Section, percentile
from bot.core import quota
from bot.core.models import JobRequest
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store

GUILD_QUOTA, GUILD_BUDGET = 1001, 1002
ROLE = 900
KINDS = [("768P", 6)] * 12 + [("768P", 10)] * 5 + [("1080P", 6)] * 3


@dataclass
class QuotaConfig:
    members: int = 50
    concurrent_per_member: int = 2
    default_credits: int = 20
    budget_usd: float = 60.0
    seed: int = 17


@dataclass
class Member:
    guild: int
    user: int
    roles: tuple[int, ...]
    allowance: int


async def mixed_policy(
    store: Store, guild: int, user: int, i: int, default_credits: int
) -> tuple[tuple[int, ...], int]:
    """Member number `i`'s policy, a mix as real servers have: the default, a role limit (every 7th), a member
    override (every 5th) and a bonus grant (every 6th). Returns the member's roles and credit allowance."""
    roles = (ROLE,) if i % 7 == 0 else ()
    allowance = default_credits + 10 if roles else default_credits
    if i % 5 == 0:
        allowance = default_credits + 15
        await store.set_member_policy(guild, user, None, credits=allowance)
    if i % 6 == 0:
        await store.grant(guild, user, 3, None, "bench bonus")
        allowance += 3
    return roles, allowance


async def _setup(store: Store, cfg: QuotaConfig) -> list[Member]:
    members = []
    await store.set_guild_settings(GUILD_BUDGET, None, budget_usd=cfg.budget_usd)
    for guild in (GUILD_QUOTA, GUILD_BUDGET):
        await store.set_role_limit(guild, ROLE, cfg.default_credits + 10, None)
    for i in range(cfg.members):
        guild = GUILD_QUOTA if i < cfg.members // 2 else GUILD_BUDGET
        user = 10_000 + i
        roles, allowance = await mixed_policy(store, guild, user, i, cfg.default_credits)
        members.append(Member(guild, user, roles, allowance))
    return members


async def _hammer(store: Store, settings: Settings, members: list[Member], cfg: QuotaConfig,
                  deadline: Deadline) -> tuple[float, list[float], Counter[str]]:  # fmt: skip
    rng = random.Random(cfg.seed)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def member_loop(member: Member, attempts: int) -> None:
        for n in range(attempts):
            resolution, duration = rng.choice(KINDS)
            request = JobRequest(
                guild_id=member.guild, channel_id=1, user_id=member.user, prompt=f"bench {member.user} {n}",
                resolution=resolution, duration=duration, role_ids=member.roles, entry="slash",
            )  # fmt: skip
            started = time.perf_counter()
            job, decision = await quota.admit(store, settings, request)
            latencies.append(time.perf_counter() - started)
            outcomes["reserved" if job is not None else str(decision.refusal)] += 1

    loops = []
    for member in members:
        attempts = member.allowance + 10  # more than the credits allow: every member ends refused
        share = [attempts // cfg.concurrent_per_member] * cfg.concurrent_per_member
        share[0] += attempts % cfg.concurrent_per_member
        loops += [member_loop(member, n) for n in share]
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*loops), deadline.left(120))
    return time.perf_counter() - started, latencies, outcomes


def _verify(db_path: Path, members: list[Member], cfg: QuotaConfig) -> dict[str, object]:
    with sqlite3.connect(db_path) as db:
        used = {
            (g, u): c
            for g, u, c in db.execute(
                "SELECT guild_id, user_id, SUM(credits) FROM jobs WHERE charge_state = 'reserved' "
                "GROUP BY guild_id, user_id"
            )
        }
        spent = db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE guild_id = ?", [GUILD_BUDGET]
        ).fetchone()[0]
        reserved_ledger = db.execute("SELECT COALESCE(SUM(credits), 0) FROM ledger WHERE kind = 'reserve'")
        ledger_total = reserved_ledger.fetchone()[0]
        jobs_total = db.execute("SELECT COALESCE(SUM(credits), 0) FROM jobs").fetchone()[0]
    over = [m for m in members if used.get((m.guild, m.user), 0) > m.allowance]
    quota_members = [m for m in members if m.guild == GUILD_QUOTA]
    # A member refused with a credit or more still unused would be an over-cautious check (2-credit jobs
    # can leave one credit over, so "full" means within one credit).
    full = [m for m in quota_members if used.get((m.guild, m.user), 0) >= m.allowance - 1]
    return {
        "overspent_members": len(over), "budget_spent": spent, "budget_ok": spent <= cfg.budget_usd + 1e-9,
        "ledger_matches": ledger_total == jobs_total, "full_members": len(full),
        "quota_members": len(quota_members),
    }  # fmt: skip


async def _main(cfg: QuotaConfig, tmp: Path, deadline: Deadline) -> tuple[float, list[float], Counter[str],
                                                                          list[Member]]:  # fmt: skip
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=tmp / "quota.db", media_dir=tmp / "media", default_quota_credits=cfg.default_credits,
        user_max_concurrent=1_000_000, guild_max_concurrent=1_000_000,
    )  # fmt: skip
    store = SqliteStore(settings.database_path)
    await store.open()
    try:
        members = await _setup(store, cfg)
        elapsed, latencies, outcomes = await _hammer(store, settings, members, cfg, deadline)
    finally:
        await store.close()
    return elapsed, latencies, outcomes, members


def run(cfg: QuotaConfig, deadline: Deadline) -> Section:
    section = Section("quota")
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-quota-") as tmp:
        elapsed, latencies, outcomes, members = asyncio.run(_main(cfg, Path(tmp), deadline))
        check = _verify(Path(tmp) / "quota.db", members, cfg)
    reserved = outcomes["reserved"]
    decisions = sum(outcomes.values())
    section.add(
        f"credit reservations / s, {cfg.members} members at once", f"{reserved / elapsed:,.0f} /s",
        bound="one SQLite write transaction per request (5 reads, 3 inserts, WAL commit without fsync) on "
        "the store's single thread: serial by design, so that check-and-reserve is atomic",
    )  # fmt: skip
    ok = check["overspent_members"] == 0 and check["budget_ok"] and check["ledger_matches"]
    section.add(
        "members over their allowance · server over budget", f"{check['overspent_members']} · "
        f"${check['budget_spent']:.2f} of ${cfg.budget_usd:.2f}", "0 · within", bool(ok),
        "correctness, not speed: the check and the reservation are one transaction",
    )  # fmt: skip
    section.notes.append(
        f"quota: {decisions:,} admissions in {elapsed:.1f} s ({decisions / elapsed:,.0f} decisions/s; "
        f"admit latency p50/p99 {percentile(latencies, 50) * 1000:.1f}/"
        f"{percentile(latencies, 99) * 1000:.1f} ms "
        f"with {cfg.members * cfg.concurrent_per_member} requests in flight); outcomes "
        f"{dict(outcomes)}; members of the quota-bound server who used their allowance (to within one "
        f"credit): {check['full_members']}/{check['quota_members']}; ledger matches jobs: "
        f"{check['ledger_matches']}"
    )
    section.data = {"elapsed": elapsed, "outcomes": dict(outcomes), "check": check}
    return section


if __name__ == "__main__":  # a quick look: python -m bench.quota
    sec = run(QuotaConfig(default_credits=5), Deadline(120, "quota"))
    for fig in sec.figures:
        print(f"{fig.name:52} {fig.measured:32} {fig.target:12} {fig.verdict}")
    print(*sec.notes, sep="\n")
