"""The eta-aware poll schedule against fixed pollers, simulated on noisy timelines (no real sleeping)."""

from __future__ import annotations

import random
import statistics

from bot.core.polling import PollPlan


def simulate(total: float, rng: random.Random, delay_fn) -> tuple[int, float]:
    """Poll a task finishing at `total` seconds; return (polls, detection delay)."""
    t = 0.0
    polls = 0
    while True:
        t += delay_fn(t)
        polls += 1
        if t >= total:
            return polls, t - total


def noisy_view(total: float, t: float, rng: random.Random) -> tuple[float, float]:
    remaining = max(0.0, total - t)
    return remaining * rng.uniform(0.7, 1.3), min(99.0, 100 * t / total)


def run_plan(total: float, rng: random.Random) -> tuple[int, float]:
    plan = PollPlan(lo=1.0, hi=30, first=5)
    state = {"eta": None, "progress": None}

    def delay(t: float) -> float:
        d = plan.next_delay(t, state["eta"], state["progress"], rng)
        eta, progress = noisy_view(total, t + d, rng)
        state["eta"], state["progress"] = eta, progress
        return d

    return simulate(total, rng, delay)


def test_fewer_polls_than_fixed_5s_and_detects_no_later_than_fixed_2s() -> None:
    rng = random.Random(7)
    totals = [rng.uniform(30, 540) for _ in range(300)]
    ours = [run_plan(t, rng) for t in totals]
    fixed5 = [simulate(t, rng, lambda _t: 5.0) for t in totals]
    fixed2 = [simulate(t, rng, lambda _t: 2.0) for t in totals]
    assert statistics.mean(p for p, _ in ours) < statistics.mean(p for p, _ in fixed5)
    assert statistics.median(d for _, d in ours) <= statistics.median(d for _, d in fixed2)


def test_delay_stays_within_bounds() -> None:
    plan = PollPlan(lo=1.5, hi=30, first=5)
    rng = random.Random(1)
    assert plan.next_delay(0, None, None, rng) == pytest_approx_range(5, 0.1)
    assert plan.next_delay(1, 10_000, 1, rng) == 30
    assert plan.next_delay(2, 0.1, 99, rng) == 1.5
    assert plan.next_delay(3, 10_000, 0, rng) == pytest_approx_range(5, 0.1)  # queued: eta is a guess


def pytest_approx_range(value: float, rel: float):
    class Within:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, float) and abs(other - value) <= value * rel

    return Within()


def test_progress_rate_tightens_an_overestimated_eta() -> None:
    plan = PollPlan(lo=1, hi=60, first=5, jitter=0)
    plan.next_delay(0, 500, 10)
    # Progress moves 10 % in 10 s: 80 % left is ~80 s, far below the claimed eta of 500 s.
    assert plan.next_delay(10, 500, 20) < 60


def test_the_displayed_eta_is_steadier_than_the_raw_one() -> None:
    rng = random.Random(3)
    plan = PollPlan(lo=1, hi=30, first=5, jitter=0)
    total, t = 300.0, 0.0
    raw_finishes, shown_finishes = [], []
    while t < total - 5:
        eta, progress = noisy_view(total, t, rng)
        delay = plan.next_delay(t, eta, progress)
        raw_finishes.append(t + eta)
        shown_finishes.append(t + (plan.expected_left(t) or 0))
        t += delay
    assert statistics.pstdev(shown_finishes[3:]) < statistics.pstdev(raw_finishes[3:])
    assert abs(shown_finishes[-1] - total) < 30
