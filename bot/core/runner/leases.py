"""Leases: which process drives which job. Claiming unfinished jobs at start and when another process's
lease runs out, renewing this process's leases, and the jobs left from the other NOVITA_MODE."""

from __future__ import annotations

import asyncio
import contextlib

from ..models import Job, JobState
from ..reporting import job_log
from .base import CLAIM_BATCH, REFUNDED, RunnerBase, log


class LeaseKeeping(RunnerBase):
    def _woken(self, reason: str) -> None:
        """Another process freed a Novita slot, released jobs, or paused submits (PostgreSQL NOTIFY)."""
        self._wake.set()
        if reason == "claim":
            self._claim_now.set()

    async def _claim(self, steal: bool = False, verb: str = "taking over") -> None:
        while True:
            jobs = await self.store.claim_jobs(
                self.owner,
                self.settings.job_lease_s,
                CLAIM_BATCH,
                steal=steal,
                # A trial-mode runner leaves live jobs alone (they wait for live mode); a live one takes
                # simulated jobs too, to end them with a refund.
                only_simulated=self.settings.novita_mode == "simulate",
            )
            if jobs:
                listed = ", ".join(f"{j.id}:{j.state}" for j in jobs)
                log.info("%s %d unfinished job(s): %s", verb, len(jobs), listed)
            trial = self.settings.novita_mode == "simulate"
            for job in jobs:
                if job.simulated != trial and job.state != JobState.DELIVERING:  # a delivery needs no Novita
                    self._spawn_background(self._other_mode(job, trial), f"mode-{job.id}")
                    continue
                self._drive(job.id)
            if len(jobs) < CLAIM_BATCH:
                return

    async def _claimer(self) -> None:
        """Take over jobs whose process died: each lease that runs out is claimed within a poll interval."""
        interval = min(2.0, self.settings.job_lease_s / 3)
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claim_now.wait(), interval)
            self._claim_now.clear()
            try:
                await self._claim()
            except Exception:
                log.exception("claiming jobs failed; will retry")

    async def _renewer(self) -> None:
        """Renew this process's leases well before they run out; stop driving any job another process took."""
        interval = self.settings.job_lease_s / 3
        while self._running:
            await asyncio.sleep(interval)
            # A job put to rest has no lease any more (nobody drives it), but its driver may still be
            # telling the member: that is not a job lost to another process.
            driving = [
                jid for jid, task in self._tasks.items() if not task.done() and jid not in self._resting
            ]
            try:
                held = await self.store.renew_leases(self.owner, self.settings.job_lease_s, driving)
            except Exception:
                log.exception("renewing leases failed; will retry")
                continue
            for job_id in set(driving) - held:
                # Not renewed: another process took the job, or it rests (no lease any more) and its driver
                # may still be telling the member how it ended. Only the first stops the driver.
                try:
                    job = await self.store.get_job(job_id)
                except Exception:
                    log.exception("reading job %s failed; its fenced writes will tell", job_id)
                    continue
                if job is None or job.lease_owner in (None, self.owner):
                    continue
                task = self._tasks.get(job_id)
                if task is not None and not task.done():
                    job_log(job_id).warning("lease lost to another process; no longer driving")
                    task.cancel()

    async def _other_mode(self, job: Job, trial: bool) -> None:
        """An unfinished job from before NOVITA_MODE changed. A simulated one is ended with a refund: the
        live service must never be asked (or paid) for it. A real one waits, untouched, for live mode."""
        if trial:
            job_log(job.id).warning("a live job waits for NOVITA_MODE=live (it is %s)", job.state)
            return
        await self._fail(
            job,
            f"The bot left trial mode before this simulated video was done, so it was stopped. {REFUNDED}",
            "simulated job found by a live runner; not sent to Novita",
        )
