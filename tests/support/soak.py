"""What the soaks share: the random faults injected before each job, and the checks made once every job rests
(on the database rows, the fakes' records and the ledger), whichever engine and however many processes."""

from __future__ import annotations

import bisect
import collections
import random
import re
from collections.abc import Iterable, Sequence

from tests.fakes.novita import FakeNovita, Timeline
from tests.support.harness import World

FINAL = ("delivered", "failed", "cancelled", "undelivered")
VIDEO_MADE = ("delivered", "undelivered")  # the states of a job charged for its video

JobRow = tuple[int, str, str]  # id, state, charge_state
LedgerRow = tuple[int, str, int]  # job_id, kind, credits

# The caps that would refuse a soak's jobs, lifted: the soak is about faults, not about quotas.
UNCAPPED = {
    "DEFAULT_QUOTA_CREDITS": "-1",
    "USER_MAX_CONCURRENT": "100",
    "GUILD_MAX_CONCURRENT": "1000",
}


def random_fault(world: World, rng: random.Random) -> None:
    """Script the next Novita task (quick, failing, never finishing, video gone) and maybe one fault at a
    Novita endpoint or a Discord route, chosen by `rng`."""
    roll = rng.random()
    fake = world.novita
    quick = Timeline(queued_s=rng.uniform(0.05, 0.3), processing_s=rng.uniform(0.2, 1.2), eta_noise=0.3)
    if roll < 0.06:
        fake.inject("submit", "status", status=429, retry_after=0.1)
    elif roll < 0.10:
        fake.inject("submit", "status", status=503)
    elif roll < 0.13:
        fake.inject("submit", "hang", seconds=3)
    elif roll < 0.18:
        fake.inject("poll", "status", status=503)
    elif roll < 0.22:
        fake.inject("poll", "malformed")
    elif roll < 0.26:
        quick.outcome = "fail"
        quick.reason = "Sensitive content"
    elif roll < 0.28:
        quick.outcome = "never"
    elif roll < 0.31:
        quick.video_status = 404
    elif roll < 0.34:
        world.discord.rate_limit("PATCH /webhooks/*", times=1, retry_after=0.2)
    fake.script(quick)


def all_final(rows: Sequence[JobRow], jobs: int) -> bool:
    return len(rows) == jobs and all(state in FINAL for _, state, _ in rows)


def assert_settled_and_balanced(rows: Sequence[JobRow], ledger: Iterable[LedgerRow], jobs: int) -> None:
    """Every job rests, and each one's reservation was settled exactly once: charged if its video was made
    (delivered or undelivered), refunded otherwise (reserved = charged + refunded, job by job)."""
    assert len(rows) == jobs
    stuck = [(job_id, state) for job_id, state, _ in rows if state not in FINAL]
    assert stuck == [], stuck
    settled: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for job_id, kind, credits in ledger:
        settled[job_id][kind] += credits
    for job_id, state, charge in rows:
        entries = settled[job_id]
        expected = "charged" if state in VIDEO_MADE else "refunded"
        assert charge == expected, (job_id, state, charge)
        kind = "charge" if state in VIDEO_MADE else "refund"
        assert entries["reserve"] > 0, (job_id, dict(entries))
        assert dict(entries) == {"reserve": entries["reserve"], kind: entries["reserve"]}, (job_id, state)


def assert_no_prompt_created_twice(novita: FakeNovita) -> None:
    created = collections.Counter(s["body"]["prompt"] for s in novita.created_submits)
    assert max(created.values()) == 1, [p for p, c in created.items() if c > 1]


def uploads_per_job(world: World) -> collections.Counter[int]:
    """How many times Discord accepted each job's video (`hailuo-<id>.mp4`), over every request made."""
    uploads: collections.Counter[int] = collections.Counter()
    for r in world.discord.requests:
        if 200 <= r.status < 300:
            for f in r.files:
                match = re.fullmatch(r"hailuo-(\d+)\.mp4", getattr(f, "filename", ""))
                if match:
                    uploads[int(match.group(1))] += 1
    return uploads


def assert_delivered_once(world: World, rows: Sequence[JobRow]) -> None:
    """Every delivered job's video was uploaded exactly once, and no other job's at all."""
    uploads = uploads_per_job(world)
    delivered = {job_id for job_id, state, _ in rows if state == "delivered"}
    assert set(uploads) == delivered, sorted(set(uploads) ^ delivered)
    assert all(count == 1 for count in uploads.values()), {k: v for k, v in uploads.items() if v > 1}


def assert_failures_told(world: World, failed: Iterable[tuple[int, int | None]]) -> None:
    """Each failed job's member saw the failure: its card `(job id, card message id)` ends on the failure,
    or a notice names the job (a reply in the channel, else a DM)."""
    messages = list(world.discord.world.messages_by_id.values())
    untold = []
    for job_id, card_id in failed:
        card = world.discord.world.messages_by_id.get(card_id) if card_id is not None else None
        fields = [f for e in (card.embeds if card else []) for f in e.get("fields", [])]
        status = [f["value"] for f in fields if f["name"] == "Status"]
        notice = f"your video #{job_id} could not be made"
        if not (status and status[-1].startswith("❌")) and not any(notice in m.content for m in messages):
            untold.append((job_id, status))
    assert untold == [], untold


def most_in_any_window(times: Iterable[float], window: float = 60.0) -> int:
    """The most events in any `window` seconds (a window starting at each event covers every maximum)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)),
        default=0,
    )
