"""A real process that runs the job runner until every job rests: the crash/resume tests kill it mid-job.

    python -m tests.support.runner_process --log DELIVERIES [--submit PROMPT]

Settings come from the environment like the bot's. Each delivery appends one line to DELIVERIES, so a
duplicate delivery after a restart would show as two lines.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.engine import Engine
from bot.jobs import ConsoleReporter, Delivered
from bot.models import Job, JobRequest
from bot.settings import load_settings


class LoggingReporter(ConsoleReporter):
    def __init__(self, log: Path) -> None:
        super().__init__(out=None)
        self.log = log

    async def deliver(self, job: Job, video: Path) -> Delivered:
        with self.log.open("a") as f:
            f.write(f"{job.id} {video}\n")
        return Delivered(via="console")


async def main(log: Path, prompt: str | None) -> None:
    async with Engine(load_settings(), LoggingReporter(log), backoff_base=0.01) as runner:
        await runner.start()
        if prompt:
            job, decision = await runner.submit(
                JobRequest(guild_id=1, channel_id=2, user_id=3, prompt=prompt)
            )
            assert job is not None, decision.message
            runner.start_job(job.id)
        while await runner.store.unfinished_jobs():
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--submit")
    parser.add_argument("--max-file-bytes", type=int, help="the OS refuses writes past this (a full disk)")
    args = parser.parse_args()
    if args.max_file_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (args.max_file_bytes, args.max_file_bytes))
    asyncio.run(main(args.log, args.submit))
