"""One process of the store-throughput measurement: concurrent `bot.quota.admit` loops for a fixed time.

    python -m bench.admit_process SPEC.json

The spec (written by bench/postgres.py) names the database (a PostgreSQL URL or a SQLite file whose schema and
policies are already set up), the members (server, user, roles), the number of loops, the default credits and
the seconds to run. The process opens its store as the bot does, prints `ready`, waits for a `go` line on
stdin (so that every process starts at once), runs the loops, and prints one JSON line: the outcomes
(reserved, refusals by reason), every admit latency (ms), the seconds it ran and its CPU seconds. It
closes its store when stdin gives one more line or closes (so the parent can read the server's CPU first).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.core import quota
from bot.core.models import JobRequest
from bot.core.settings import Settings
from bot.core.store import open_store

# Jobs of 1 or 2 credits, as in bench/quota.py.
KINDS = [("768P", 6)] * 12 + [("768P", 10)] * 5 + [("1080P", 6)] * 3


def settings_for(spec: dict[str, Any], media: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=Path(spec.get("sqlite") or media / "unused.db"), database_url=spec.get("url"),
        media_dir=media, default_quota_credits=spec["default_credits"],
        user_max_concurrent=1_000_000, guild_max_concurrent=1_000_000,
    )  # fmt: skip


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-admit-") as tmp:
        settings = settings_for(spec, Path(tmp))
        store = open_store(settings.database_path, settings.database_url_value)
        await store.open()
        try:
            result = await _loops(store, settings, spec)
            print(json.dumps(result), flush=True)
            # Keep the connections until the parent has read the server's CPU time, then close.
            await asyncio.to_thread(sys.stdin.readline)
            return result
        finally:
            await store.close()


async def _loops(store: Any, settings: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    members = spec["members"]
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    started = time.monotonic()
    cpu = time.process_time()
    end = started + spec["seconds"]

    async def loop(n: int) -> None:
        rng = random.Random(spec["seed"] * 1000 + n)
        count = 0
        while time.monotonic() < end:
            guild, user, roles = rng.choice(members)
            resolution, duration = rng.choice(KINDS)
            count += 1
            request = JobRequest(
                guild_id=guild, channel_id=1, user_id=user, prompt=f"bench {spec['seed']}.{n}.{count}",
                resolution=resolution, duration=duration, role_ids=tuple(roles), entry="slash",
            )  # fmt: skip
            t0 = time.perf_counter()
            job, decision = await quota.admit(store, settings, request)
            latencies.append(time.perf_counter() - t0)
            outcomes["reserved" if job is not None else str(decision.refusal)] += 1

    await asyncio.gather(*(loop(n) for n in range(spec["loops"])))
    return {
        "seconds": time.monotonic() - started,
        "cpu": time.process_time() - cpu,
        "outcomes": dict(outcomes),
        "latencies_ms": [round(x * 1000, 2) for x in latencies],
    }


if __name__ == "__main__":
    asyncio.run(run(json.loads(Path(sys.argv[1]).read_text())))
