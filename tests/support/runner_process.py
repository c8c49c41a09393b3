"""A real process that runs the job runner until every job rests: the crash/resume tests kill it mid-job.

    python -m tests.support.runner_process --log DELIVERIES [--submit PROMPT] [--until-jobs N]

Settings come from the environment like the bot's. Each delivery appends one line to DELIVERIES, so a
duplicate delivery after a restart would show as two lines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from bot.core.engine import Engine
from bot.core.models import DeliveryRoute, Job, JobRequest
from bot.core.reporting import ConsoleReporter, Delivered
from bot.core.settings import load_settings
from bot.core.store import Store


class LoggingReporter(ConsoleReporter):
    def __init__(self, log: Path) -> None:
        super().__init__(out=None)
        self.log = log

    delay = 0.0

    async def deliver(self, job: Job, video: Path) -> Delivered:
        await asyncio.sleep(self.delay)  # a slow upload: the process can be killed while delivering
        with self.log.open("a") as f:
            f.write(f"{job.id} {video}\n")
        return Delivered(via=DeliveryRoute.CONSOLE)


async def main(log: Path, prompt: str | None, until_jobs: int = 0, count: int = 1) -> None:
    async with Engine(load_settings(), LoggingReporter(log), backoff_base=0.01) as runner:
        await runner.start()
        for n in range(count if prompt else 0):
            text = prompt if count == 1 else f"{prompt} #{n}"
            job, decision = await runner.submit(JobRequest(guild_id=1, channel_id=2, user_id=3, prompt=text))
            assert job is not None, decision.message
            runner.start_job(job.id)
        # Until that many jobs exist (--until-jobs: a standby process), then until every job rests. Counted
        # first: a job created between the two reads must not look like "none unfinished, enough exist".
        while await _job_count(runner.store) < until_jobs or await runner.store.unfinished_jobs():
            await asyncio.sleep(0.05)


async def _job_count(store: Store) -> int:
    return len(await store.jobs_for_user(1, 3, limit=1000))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--submit")
    parser.add_argument("--until-jobs", type=int, default=0, help="stay up until this many jobs exist")
    parser.add_argument("--count", type=int, default=1, help="submit this many jobs (prompt #0, #1, ...)")
    parser.add_argument("--deliver-delay", type=float, default=0.0, help="hold each delivery this long")
    parser.add_argument("--max-file-bytes", type=int, help="the OS refuses writes past this (a full disk)")
    args = parser.parse_args()
    if args.max_file_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (args.max_file_bytes, args.max_file_bytes))
    LoggingReporter.delay = args.deliver_delay
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(main(args.log, args.submit, args.until_jobs, args.count))
