"""Each Novita fault through the runner: a plain sentence for the member, the detail for moderators, credits
back when no video was delivered, and the runner keeps serving the next job."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bot.models import ChargeState, JobState
from tests.conftest import Env
from tests.fakes.novita import FakeNovita, Timeline
from tests.support.builders import request

FAULTS = [
    ("bad request", lambda f: f.inject("submit", "status", status=400, message="prompt rejected")),
    ("bad key", lambda f: f.inject("submit", "status", status=401)),
    ("no access", lambda f: f.inject("submit", "status", status=403, reason="NO_MODEL_ACCESS")),
    ("no balance", lambda f: f.inject("submit", "status", status=403, reason="NOT_ENOUGH_BALANCE")),
    ("server error", lambda f: f.inject("submit", "status", status=500)),
    ("overloaded", lambda f: f.inject("submit", "status", status=504)),
    ("reset", lambda f: f.inject("submit", "reset", create_task=True)),
    ("hang", lambda f: f.inject("submit", "hang", seconds=10)),
    ("malformed submit", lambda f: f.inject("submit", "malformed")),
    (
        "html error page",
        lambda f: f.inject(
            "submit", "status", status=502, body="<html>Bad gateway</html>", content_type="text/html"
        ),
    ),
    (
        "task failed",
        lambda f: f.script(
            Timeline(queued_s=0.05, processing_s=0.1, outcome="fail", reason="Input image violates policy")
        ),
    ),
    ("success without video", lambda f: f.script(Timeline(queued_s=0.05, processing_s=0.1, no_videos=True))),
    ("video link 404", lambda f: f.script(Timeline(queued_s=0.05, processing_s=0.1, video_status=404))),
    ("not an mp4", lambda f: f.script(Timeline(queued_s=0.05, processing_s=0.1, video_not_mp4=True))),
]


def sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


@pytest.mark.parametrize(("name", "inject"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_each_fault_reads_plainly_refunds_and_the_next_job_runs(
    env: Env, name: str, inject: Callable[[FakeNovita], object]
) -> None:
    inject(env.fake)
    job = await env.run(request(f"fault: {name}"), within=30)
    assert job.state == JobState.FAILED, name
    assert job.charge_state == ChargeState.REFUNDED
    error = job.error or ""
    assert "credits were returned" in error
    assert sentences(error) <= 3, error
    for leak in ("HTTP", "{", "Traceback", "<html", env.fake.api_key, "aiohttp"):
        assert leak not in error, (leak, error)
    assert job.error_detail, "moderators get the detail"
    env.fake.clear_faults()
    env.settings.user_max_concurrent = 5
    following = await env.run(request("the next one"))
    assert following.state == JobState.DELIVERED


async def test_an_unknown_status_is_waited_on_until_it_resolves(env: Env) -> None:
    env.fake.inject(
        "poll", "respond", times=3, body={"task": {"task_id": "x", "status": "TASK_STATUS_RESCHEDULED"}}
    )
    job = await env.run(request())
    assert job.state == JobState.DELIVERED


async def test_a_cancelled_status_counts_as_failed(env: Env) -> None:
    task = {"task_id": "x", "status": "TASK_STATUS_CANCELED", "reason": "cancelled by the provider"}
    env.fake.inject("poll", "respond", body={"task": task})
    job = await env.run(request())
    assert job.state == JobState.FAILED
    assert "cancelled by the provider" in (job.error or "")
