"""Each Novita fault through the runner: a plain sentence for the member, the detail for moderators, credits
back when no video was delivered, and the runner keeps serving the next job."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from bot.core.models import ChargeState, JobState
from tests.conftest import Env
from tests.fakes.novita import FakeNovita, Timeline
from tests.support.builders import request

FAULTS = [
    ("bad request", lambda f: f.inject("submit", "status", status=400, message="prompt rejected")),
    ("bad key", lambda f: f.inject("submit", "status", status=401)),
    ("no access", lambda f: f.inject("submit", "status", status=403, reason="NO_MODEL_ACCESS")),
    ("no balance", lambda f: f.inject("submit", "status", status=403, reason="NOT_ENOUGH_BALANCE")),
    ("billing", lambda f: f.inject("submit", "status", status=400, reason="BILLING_BALANCE_NOT_ENOUGH")),
    ("illegal prompt", lambda f: f.inject("submit", "status", status=400, reason="ILLEGAL_PROMPT")),
    ("illegal image", lambda f: f.inject("submit", "status", status=400, reason="ILLEGAL_IMAGE_CONTENT")),
    ("api not allowed", lambda f: f.inject("submit", "status", status=403, reason="API_NOT_ALLOWED")),
    ("real name", lambda f: f.inject("submit", "status", status=403, reason="NEED_REAL_NAME_VERIFY")),
    ("odd reason", lambda f: f.inject("submit", "status", status=400, reason="<@&1> `NEW`\n**WHY**")),
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
    error = str(job.error_text) or ""
    assert "credits were returned" in error
    assert sentences(error) <= 3, error
    for leak in ("HTTP", "{", "Traceback", "<html", env.fake.api_key, "aiohttp", "<@", "`", "**", "\n"):
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
    assert "cancelled by the provider" in (str(job.error_text) or "")


# Novita's documented error reasons: what the member reads, and what moderators and the log get.
REASONS = [
    ("BILLING_BALANCE_NOT_ENOUGH", 400, "The server's video account is out of credit", "top up"),
    ("NOT_ENOUGH_BALANCE", 403, "The server's video account is out of credit", "top up"),
    ("ILLEGAL_PROMPT", 400, "Novita's content rules refused the prompt", None),
    ("ILLEGAL_IMAGE_CONTENT", 400, "Novita's content rules refused the image", None),
    ("INVALID_API_KEY", 403, "The video service rejected the bot's API key", "check NOVITA_API_KEY"),
    (
        "API_NOT_ALLOWED",
        403,
        "The video service can't be used with the bot's account",
        "enable this model's API",
    ),
    (
        "NEED_REAL_NAME_VERIFY",
        403,
        "The video service can't be used with the bot's account",
        "complete the real-name verification",
    ),
]


@pytest.mark.parametrize(("reason", "status", "member", "operator"), REASONS, ids=[r[0] for r in REASONS])
async def test_documented_reasons_are_branched_on_not_only_the_status(
    env: Env, reason: str, status: int, member: str, operator: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.inject("submit", "status", status=status, reason=reason)
    job = await env.run(request(f"reason {reason}"))
    assert job.state == JobState.FAILED
    assert job.charge_state == ChargeState.REFUNDED
    assert (str(job.error_text) or "").startswith(member), str(job.error_text)
    assert "credits were returned" in (str(job.error_text) or "")
    assert reason in (job.error_detail or "")
    if operator:
        assert f"operator: {operator}" in (job.error_detail or "")
        assert operator in caplog.text  # the log carries the action for the operator
        assert operator not in (str(job.error_text) or "")


async def test_out_of_credit_pauses_submits_and_queued_jobs_wait_visibly(env: Env) -> None:
    env.settings.novita_balance_pause_s = 2.0
    env.settings.user_max_concurrent = 5
    env.fake.inject("submit", "status", status=400, reason="BILLING_BALANCE_NOT_ENOUGH")
    first = await env.run(request("first"))
    assert first.state == JobState.FAILED
    notice = env.runner.queue_notice()
    assert notice is not None
    assert "out of credit" in str(notice)
    second, _ = await env.runner.submit(request("second"))
    assert second is not None
    env.runner.start_job(second.id)
    await wait_until(lambda: env.runner.queue_position(second.id) == 1)
    assert len(env.fake.submits) == 1  # no retry storm: the queued job waits out the pause
    done = await env.runner.wait_settled(second.id, 20)
    assert done.state == JobState.DELIVERED
    assert len(env.fake.submits) == 2
    assert env.runner.queue_notice() is None


async def wait_until(predicate: Callable[[], bool], within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)
