"""When to poll a Novita task next.

A fixed poller wastes requests early and detects late. This one aims each poll at about half of the
estimated remaining time, so it closes in geometrically on the finish, then polls at the lower bound through
the final stretch. The remaining time is the smaller of Novita's `eta` and what the observed rate of
`progress_percent` predicts; both are noisy, so the half-way aim keeps an over-estimate from overshooting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class PollPlan:
    """Per-task polling memory: the last progress observation, to estimate the rate of progress."""

    lo: float
    hi: float
    first: float
    aim: float = 0.5  # fraction of the estimated remaining time to wait
    jitter: float = 0.1
    _last: tuple[float, float] | None = field(default=None, repr=False)  # (time, progress)
    _rate: float | None = field(default=None, repr=False)  # progress percent per second
    _finish: float | None = field(default=None, repr=False)  # smoothed expected finish time (for display)

    def remaining(self, now: float, eta_s: float | None, progress: float | None) -> float | None:
        """Best estimate of the seconds left, or None when nothing is known yet."""
        estimates = []
        if eta_s is not None and eta_s >= 0:
            estimates.append(eta_s)
        if progress is not None and 0 < progress < 100:
            if self._last is not None and progress > self._last[1] and now > self._last[0]:
                rate = (progress - self._last[1]) / (now - self._last[0])
                self._rate = rate if self._rate is None else 0.5 * self._rate + 0.5 * rate
            if self._last is None or progress != self._last[1]:
                self._last = (now, progress)
            if self._rate:
                estimates.append((100 - progress) / self._rate)
        return min(estimates) if estimates else None

    def next_delay(
        self, now: float, eta_s: float | None, progress: float | None, rng: random.Random | None = None
    ) -> float:
        left = self.remaining(now, eta_s, progress)
        if left is not None:
            finish = now + left
            self._finish = finish if self._finish is None else self._finish + 0.3 * (finish - self._finish)
        base = self.first if left is None else left * self.aim
        if not progress:  # still queued, or no progress seen: an eta then is a guess, so look again soon
            base = min(base, self.first)
        factor = 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return min(self.hi, max(self.lo, base * factor))

    def expected_left(self, now: float) -> float | None:
        """Seconds until the smoothed expected finish: steadier than one eta, for what members see."""
        return None if self._finish is None else max(0.0, self._finish - now)
