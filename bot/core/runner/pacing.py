"""Submit pacing: the local queue, the dispatcher that hands out submit turns under Novita's rate and
in-flight limits (kept in the store, for every process together), places in line, and the balance pause."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ..models import InvalidTransition, Job
from .base import BALANCE_PAUSE, RunnerBase, log


class SubmitPacing(RunnerBase):
    def queue_position(self, job_id: int) -> int | None:
        """The job's place among every process's waiting jobs (as last read), else in this process's queue."""
        with contextlib.suppress(ValueError):
            return self._global_queue.index(job_id) + 1
        for position, queued in enumerate(self._queue, start=1):
            if queued == job_id:
                return position
        return None

    # A pause after Novita said the account is out of credit: queued jobs wait, and their cards say why.
    async def pause_for_balance(self) -> None:
        """Novita said the account is out of credit: every process holds its submits for a while (no retry
        storm), and the cards of queued jobs say why."""
        seconds = self.settings.novita_balance_pause_s
        await self.store.pause_submits(seconds, BALANCE_PAUSE)
        self.paused_until = time.time() + seconds
        log.warning("Novita account out of credit: submits pause for %.0f s", seconds)
        self._notify_queue_positions()

    def queue_notice(self) -> str | None:
        """One sentence for the cards of queued jobs while submits are paused, else None."""
        if self.paused_until is None or self.paused_until <= time.time():
            return None
        return (
            "The server's video account is out of credit, so jobs are waiting; the moderators have been "
            f"told. Next try <t:{int(self.paused_until)}:R>."
        )

    async def _await_turn(self, job: Job) -> Job:
        """Wait in the local queue until the dispatcher moved the job to `submitting`."""
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._queue[job.id] = fut
        if job.id in self._submit_failures:  # refused by Novita's rate limit: keep its place at the front
            self._queue.move_to_end(job.id, last=False)
        self._wake.set()
        try:
            job = await fut  # the dispatcher moved it to `submitting` once a slot and a rate token were ours
        finally:
            self._queue.pop(job.id, None)
        return job

    async def _dispatch(self) -> None:
        """Hand out submit turns in queue order while the in-flight and per-minute limits allow. The limits
        are kept in the store, for every process together: a turn is one atomic write there."""
        s = self.settings
        while self._running:
            head = next((jid for jid, fut in self._queue.items() if not fut.done()), None)
            if head is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            fut = self._queue[head]
            try:
                job, wait = await self.store.take_submit_turn(
                    head, self.owner, s.novita_rate_per_minute, s.novita_max_in_flight
                )
            except (InvalidTransition, KeyError) as exc:  # cancelled, or another process has it now
                self._queue.pop(head, None)
                if not fut.done():
                    fut.set_exception(InvalidTransition(str(exc)))
                continue
            except Exception:
                log.exception("taking a submit turn failed; will retry")
                job, wait = None, 1.0
            if job is not None:
                self._track(job)
                self._queue.pop(head, None)
                self._forget_queued(head)
                self._submitting.add(head)  # from now on a stop waits for its request
                if not fut.done():
                    fut.set_result(job)
                self._notify_queue_positions()
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(wait, 5.0))

    def _forget_queued(self, job_id: int) -> None:
        """This process moved the job out of the line: the places shown until the next read follow at once."""
        with contextlib.suppress(ValueError):
            self._global_queue.remove(job_id)

    def _notify_queue_positions(self) -> None:
        """Refresh the places in line and the cards of this process's waiting jobs, once for a burst of
        turns (one query for all of them, not one per job)."""
        if not self._positions_pending:
            self._positions_pending = True
            self._spawn_background(self._renotify_positions(), "positions")

    async def _renotify_positions(self) -> None:
        await asyncio.sleep(0)  # the turns handed out in this burst come first
        self._positions_pending = False  # a turn from here on schedules the next refresh
        waiting = await self.store.queued_jobs()
        self._global_queue = [job.id for job in waiting]
        with contextlib.suppress(Exception):  # a pause another process set (shown on the cards)
            until, detail = await self.store.submit_pause()
            if until is not None and detail == BALANCE_PAUSE:
                self.paused_until = until.timestamp()
        local = set(self._queue)
        for job in waiting:
            if job.id in local:
                await self._changed(job)
