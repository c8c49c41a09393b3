"""The job runner against the fake Novita over real HTTP, with real SQLite files and real MP4s."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

from bot.core import media
from bot.core.jobs import MAX_PREPARE_ATTEMPTS, JobRunner
from bot.core.models import ChargeState, InvalidTransition, Job, JobState
from bot.core.novita import NovitaClient
from bot.core.settings import Settings
from bot.core.store import SqliteStore, Store
from tests.conftest import QUICK, Env
from tests.fakes.novita import FakeNovita, Timeline
from tests.fakes.server import LoopbackServer
from tests.support.builders import png, request
from tests.support.recording_reporter import RecordingReporter


async def start_clips(env: Env, count: int) -> list[Job]:
    """Admit and start `count` jobs ("clip 0", "clip 1", ...) at once."""
    jobs = []
    for i in range(count):
        job, _ = await env.runner.submit(request(f"clip {i}"))
        assert job is not None
        env.runner.start_job(job.id)
        jobs.append(job)
    return jobs


async def test_text_job_completes_with_the_right_body(env: Env) -> None:
    job = await env.run(request(duration=10, prompt_expansion=False, camera="Pan left"))
    assert job.state == JobState.DELIVERED
    assert job.charge_state == ChargeState.CHARGED
    body = env.fake.submits[0]["body"]
    assert body == {"prompt": "a cat surfing [Pan left]", "duration": 10, "resolution": "768P",
                    "enable_prompt_expansion": False}  # fmt: skip
    [(job_id, path)] = env.reporter.delivered
    assert job_id == job.id
    assert media.is_mp4(path)
    states = [e["state"] for e in await env.store.events(job.id)]
    assert states == ["accepted", "queued", "submitting", "submitted", "processing", "downloading",
                      "delivering", "delivered"]  # fmt: skip
    assert await env.store.ledger_totals() == {"reserve": 2, "charge": 2}


async def test_image_job_sends_the_normalised_image_as_a_data_uri_in_image(env: Env) -> None:
    job = await env.run(request(image_bytes=png(4000, 3000), image_name="big.png"))
    assert job.state == JobState.DELIVERED
    body = env.fake.submits[0]["body"]
    assert "image_url" not in body  # takes an http(s) URL only: never the data URI
    assert body["image"].startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1])))
    assert sent.size == (1920, 1440)
    assert sent.format == "JPEG"
    assert list(env.settings.images_dir.glob("*.src")) == []  # the raw upload goes once normalised
    assert (env.settings.images_dir / f"{job.id}.jpg").exists()  # the normalised input stays (Regenerate)


async def test_image_from_a_url_is_downloaded_before_submitting(env: Env) -> None:
    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=png(800, 600), content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.webp", serve)
    async with LoopbackServer(app) as cdn:
        env.settings.image_origins = (cdn.url,)  # the loopback stand-in for Discord's CDN
        job = await env.run(request(image_url=f"{cdn.url}/cat.webp"))
    assert job.state == JobState.DELIVERED
    task = next(iter(env.fake.tasks.values()))
    assert task.image_size == (800, 600)


async def test_bad_image_fails_before_any_request_with_a_refund(env: Env) -> None:
    job = await env.run(request(image_bytes=png(200, 900)))
    assert job.state == JobState.FAILED
    assert "300 px" in (str(job.error_text) or "")
    assert "credits were returned" in (str(job.error_text) or "")
    assert env.fake.submits == []
    assert await env.store.ledger_totals() == {"reserve": 1, "refund": 1}


async def test_failed_task_quotes_the_reason_and_refunds(env: Env) -> None:
    env.fake.script(
        Timeline(queued_s=0.05, processing_s=0.2, outcome="fail", reason="Sensitive content detected")
    )
    job = await env.run(request())
    assert job.state == JobState.FAILED
    assert "“Sensitive content detected”" in (str(job.error_text) or "")
    assert job.charge_state == ChargeState.REFUNDED
    assert env.reporter.ended[-1].id == job.id


async def test_429_on_submit_is_retried_and_the_job_completes(env: Env) -> None:
    env.fake.inject("submit", "status", status=429, retry_after=0.05)
    job = await env.run(request())
    assert job.state == JobState.DELIVERED
    assert len(env.fake.created_submits) == 1


async def test_5xx_on_submit_fails_with_refund_and_no_second_submit(env: Env) -> None:
    env.fake.inject("submit", "status", status=503)
    job = await env.run(request())
    assert job.state == JobState.FAILED
    assert job.charge_state == ChargeState.REFUNDED
    assert len(env.fake.submits) == 1
    await asyncio.sleep(0.3)
    assert len(env.fake.submits) == 1


async def test_a_submit_given_up_without_an_answer_counts_for_one_request_timeout_more(env: Env) -> None:
    """Novita may still take a request the client stopped waiting for; one it answered (a 503) it has seen.
    Each counts against the per-minute limit from the latest moment Novita may have taken it."""
    env.fake.inject("submit", "status", status=503)
    answered = await env.run(request(prompt="answered"))
    env.fake.inject("submit", "hang", seconds=5)  # past the client's 2 s timeout
    unanswered = await env.run(request(prompt="unanswered"))
    assert answered.state == unanswered.state == JobState.FAILED
    assert answered.finished_at is not None
    assert unanswered.finished_at is not None
    counted = await env.store.submits_since(answered.created_at)  # in order: the answered one counts first
    timeout = env.settings.novita_request_timeout_s
    assert (counted[0] - answered.finished_at).total_seconds() < timeout / 2  # counted from its answer
    assert (counted[1] - unanswered.finished_at).total_seconds() > timeout / 2  # and a request timeout more


async def test_no_balance_is_a_plain_sentence(env: Env) -> None:
    env.fake.no_balance = True
    job = await env.run(request())
    assert job.state == JobState.FAILED
    assert "test-novita-key" not in (str(job.error_text) or "") + (job.error_detail or "")
    assert "credits were returned" in (str(job.error_text) or "")


async def test_deadline_ends_a_never_finishing_task_with_a_refund(env: Env) -> None:
    env.settings.job_deadline_minutes = 0.02  # 1.2 s
    env.fake.script(Timeline(queued_s=0.05, processing_s=0.1, outcome="never"))
    job = await env.run(request())
    assert job.state == JobState.FAILED
    assert "stopped waiting" in (str(job.error_text) or "")
    assert job.charge_state == ChargeState.REFUNDED


async def test_polls_survive_transient_errors(env: Env) -> None:
    env.fake.inject("poll", "status", status=503, times=2)
    env.fake.inject("poll", "malformed")
    job = await env.run(request())
    assert job.state == JobState.DELIVERED


async def test_local_queue_honours_in_flight_limit_and_cancel_refunds(env: Env) -> None:
    env.settings.user_max_concurrent = 10
    env.settings.novita_max_in_flight = 1
    env.fake.default_timeline = Timeline(queued_s=0.05, processing_s=0.3)
    jobs = await start_clips(env, 3)
    await asyncio.sleep(0.1)
    assert env.runner.queue_position(jobs[1].id) == 1
    assert env.runner.queue_position(jobs[2].id) == 2
    cancelled = await env.runner.cancel(jobs[2].id)
    assert cancelled is not None
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.charge_state == ChargeState.REFUNDED
    first = await env.runner.wait_settled(jobs[0].id, 10)
    second = await env.runner.wait_settled(jobs[1].id, 10)
    assert first.state == second.state == JobState.DELIVERED
    assert second.submitted_at >= first.finished_at  # never two at Novita at once
    assert len(env.fake.submits) == 2


async def test_places_in_line_move_up_at_once_when_a_job_ahead_is_cancelled(env: Env) -> None:
    """The places shown on the cards follow a cancel at once, not only at the next read of the shared line."""
    env.settings.novita_rate_per_minute = 1
    env.settings.user_max_concurrent = 10
    ids = [job.id for job in await start_clips(env, 4)]
    for _ in range(100):  # the first takes the minute's only turn; the others line up behind it
        if len(env.fake.submits) == 1 and env.runner.queue_position(ids[3]) == 3:
            break
        await asyncio.sleep(0.05)
    assert [env.runner.queue_position(i) for i in ids[1:]] == [1, 2, 3]
    assert await env.runner.cancel(ids[1]) is not None
    assert [env.runner.queue_position(i) for i in ids[2:]] == [1, 2]
    for job_id in ids[2:]:
        await env.runner.cancel(job_id)


async def test_rate_limit_spaces_submits(env: Env) -> None:
    env.settings.novita_rate_per_minute = 2
    env.settings.user_max_concurrent = 10
    ids = [job.id for job in await start_clips(env, 3)]
    await asyncio.sleep(1.0)
    assert len(env.fake.submits) == 2  # the third waits for the minute window
    assert env.runner.queue_position(ids[2]) == 1
    await env.runner.cancel(ids[2])


class SlowEndReporter(RecordingReporter):
    """Telling the member a job ended takes a while (Discord is slow, or rate-limits the card edit)."""

    def __init__(self) -> None:
        super().__init__()
        self.told: asyncio.Event = asyncio.Event()

    async def job_ended(self, job: Job) -> None:
        await asyncio.sleep(1.0)  # several lease renewals happen meanwhile
        await super().job_ended(job)
        self.told.set()


async def test_the_end_of_a_job_is_reported_in_full_while_its_lease_is_renewed(
    settings: Settings, store: Store
) -> None:
    """A job that rests has no lease any more (nobody drives it); the lease renewer must not take that for a
    job lost to another process and cut its driver off while it is still telling the member."""
    settings.job_lease_s = 1  # renewals every third of a second
    reporter = SlowEndReporter()
    failing = Timeline(queued_s=0.1, processing_s=0.2, outcome="fail", reason="Sensitive content")
    async with FakeNovita(default_timeline=failing) as fake, aiohttp.ClientSession() as http:
        novita = NovitaClient(http, base_url=fake.base_url, api_key=fake.api_key, backoff_base=0.01)
        runner = JobRunner(store=store, settings=settings, novita=novita, http=http, reporter=reporter)
        await runner.start()
        try:
            job, _ = await runner.submit(request())
            assert job is not None
            runner.start_job(job.id)
            await asyncio.wait_for(reporter.told.wait(), 10)
        finally:
            await runner.stop(grace=0)
    [ended] = reporter.ended
    assert ended.state == JobState.FAILED
    assert "Sensitive content" in (str(ended.error_text) or "")


async def test_a_job_found_in_submitting_is_refunded_not_resubmitted(
    settings: Settings, store: Store
) -> None:
    async with FakeNovita(default_timeline=QUICK) as fake, aiohttp.ClientSession() as http:
        novita = NovitaClient(http, base_url=fake.base_url, api_key=fake.api_key, backoff_base=0.01)
        first = JobRunner(store=store, settings=settings, novita=novita, http=http)
        job, _ = await first.submit(request())
        assert job is not None
        await store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
        # as if killed with the request on the wire:
        await store.transition(job.id, JobState.SUBMITTING, expect=(JobState.QUEUED,))
        reporter = RecordingReporter()
        runner = JobRunner(store=store, settings=settings, novita=novita, http=http, reporter=reporter)
        await runner.start()
        try:
            job = await runner.wait_settled(job.id, 5)
        finally:
            await runner.stop(grace=0)
        assert job.state == JobState.FAILED
        assert job.charge_state == ChargeState.REFUNDED
        assert "restarted" in (str(job.error_text) or "")
        assert fake.submits == []
        assert reporter.ended[0].id == job.id


async def test_delivery_refused_everywhere_leaves_an_undelivered_job_with_its_file(env: Env) -> None:
    env.reporter.fail_delivery = True
    job = await env.run(request())
    assert job.state == JobState.UNDELIVERED
    assert job.charge_state == ChargeState.CHARGED  # the video exists and is kept for /jobs
    assert job.video_path is not None
    env.reporter.fail_delivery = False
    await env.runner.redeliver(job.id)
    job = await env.runner.wait_settled(job.id, 5)
    assert job.state == JobState.DELIVERED


async def test_an_accepted_job_not_yet_started_resumes_on_the_next_start(
    settings: Settings, store: Store
) -> None:
    """Admitted, then the process died before the member got an answer: the next start carries it through."""
    async with FakeNovita(default_timeline=QUICK) as fake, aiohttp.ClientSession() as http:
        novita = NovitaClient(http, base_url=fake.base_url, api_key=fake.api_key, backoff_base=0.01)
        crashed = JobRunner(store=store, settings=settings, novita=novita, http=http)
        job, _ = await crashed.submit(request(image_bytes=png(640, 480)))
        assert job is not None
        assert job.state == JobState.ACCEPTED
        runner = JobRunner(store=store, settings=settings, novita=novita, http=http)
        await runner.start()
        try:
            job = await runner.wait_settled(job.id, 10)
        finally:
            await runner.stop(grace=0)
        assert job.state == JobState.DELIVERED
        assert next(iter(fake.tasks.values())).image_size == (640, 480)


def test_the_janitor_removes_only_files_past_retention(tmp_path: Path) -> None:
    import os
    import time

    from bot.core.media import remove_older

    old, new = tmp_path / "1.mp4", tmp_path / "2.mp4"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_older(tmp_path, "*.mp4", time.time() - 3600) == 1
    assert not old.exists()
    assert new.exists()


async def test_a_refused_request_leaves_no_image_behind(env: Env) -> None:
    env.settings.default_quota_credits = 0
    job, decision = await env.runner.submit(request(image_bytes=png(640, 480)))
    assert job is None
    assert decision.refusal is not None
    assert list(env.settings.images_dir.iterdir()) == []


# Issue 11 regressions ---------------------------------------------------------------------------------------


async def test_a_job_moved_by_another_driver_while_preparing_is_left_alone(env: Env) -> None:
    """A stale driver (a second process, a restart race) finishing its image preparation must not pull back a
    job that another driver already submitted: its write is refused, and it stops without failing, refunding
    or submitting anything."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_image(_request: web.Request) -> web.Response:
        started.set()
        await release.wait()
        return web.Response(body=png(800, 600), content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", slow_image)
    async with LoopbackServer(app) as cdn:
        env.settings.image_origins = (cdn.url,)  # the loopback stand-in for Discord's CDN
        job, _ = await env.runner.submit(request(image_url=f"{cdn.url}/cat.png"))
        assert job is not None
        env.runner.start_job(job.id)
        await asyncio.wait_for(started.wait(), 10)
        other = SqliteStore(env.settings.database_path)  # the other driver, on its own connection
        await other.open()
        try:
            await other.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
            await other.transition(job.id, JobState.SUBMITTING, expect=(JobState.QUEUED,))
            await other.transition(job.id, JobState.SUBMITTED, expect=(JobState.SUBMITTING,), task_id="t-x")
        finally:
            await other.close()
        release.set()
        for _ in range(200):  # until this runner's driver has given up the job
            if job.id not in env.runner._tasks:
                break
            await asyncio.sleep(0.02)
    final = await env.store.get_job(job.id)
    assert final is not None
    assert final.state == JobState.SUBMITTED
    assert final.charge_state == ChargeState.RESERVED
    assert env.fake.submits == []
    assert env.reporter.ended == []


async def test_a_queued_job_taken_by_another_driver_is_not_failed(env: Env) -> None:
    """The dispatcher hands a turn to a job that someone else already moved on: the refused write means
    'not mine any more', never a crash that fails and refunds a job that is being made."""
    env.settings.user_max_concurrent = 10
    env.settings.novita_max_in_flight = 1
    env.fake.default_timeline = Timeline(queued_s=0.05, processing_s=0.6)
    first, _ = await env.runner.submit(request("first"))
    second, _ = await env.runner.submit(request("second"))
    assert first is not None
    assert second is not None
    env.runner.start_job(first.id)
    env.runner.start_job(second.id)
    for _ in range(200):
        if env.runner.queue_position(second.id) == 1:
            break
        await asyncio.sleep(0.02)
    assert env.runner.queue_position(second.id) == 1
    await env.store.transition(second.id, JobState.SUBMITTING, expect=(JobState.QUEUED,))
    await env.store.transition(second.id, JobState.SUBMITTED, expect=(JobState.SUBMITTING,), task_id="t-y")
    done = await env.runner.wait_settled(first.id, 10)
    assert done.state == JobState.DELIVERED
    for _ in range(100):
        if second.id not in env.runner._tasks:
            break
        await asyncio.sleep(0.02)
    moved = await env.store.get_job(second.id)
    assert moved is not None
    assert moved.state == JobState.SUBMITTED
    assert moved.charge_state == ChargeState.RESERVED
    assert len(env.fake.submits) == 1  # only the first job's


async def test_cancel_racing_the_submit_write_wins_or_loses_cleanly(env: Env) -> None:
    """The member's Cancel and the runner's `queued -> submitting` write reach the store together: exactly
    one of them wins, the cancel never raises, and the loser leaves the job as the winner made it."""
    env.settings.user_max_concurrent = 10
    env.settings.novita_max_in_flight = 1
    env.fake.default_timeline = Timeline(queued_s=0.05, processing_s=0.6)
    first, _ = await env.runner.submit(request("first"))
    second, _ = await env.runner.submit(request("second"))
    assert first is not None
    assert second is not None
    env.runner.start_job(first.id)
    env.runner.start_job(second.id)
    for _ in range(200):
        if env.runner.queue_position(second.id) == 1:
            break
        await asyncio.sleep(0.02)
    cancel, submit = await asyncio.gather(
        env.runner.cancel(second.id),
        env.store.transition(second.id, JobState.SUBMITTING, expect=(JobState.QUEUED,)),
        return_exceptions=True,
    )
    assert not isinstance(cancel, BaseException), cancel
    job = await env.store.get_job(second.id)
    assert job is not None
    if cancel is None:  # the submit write won
        assert not isinstance(submit, BaseException)
        assert job.state == JobState.SUBMITTING
        assert job.charge_state == ChargeState.RESERVED
    else:  # the cancel won
        assert isinstance(submit, InvalidTransition)
        assert job.state == JobState.CANCELLED
        assert job.charge_state == ChargeState.REFUNDED
    await env.runner.wait_settled(first.id, 10)


async def test_cancel_after_the_submit_began_says_too_late(env: Env) -> None:
    job, _ = await env.runner.submit(request())
    assert job is not None
    await env.store.transition(job.id, JobState.QUEUED, expect=(JobState.ACCEPTED,))
    await env.store.transition(job.id, JobState.SUBMITTING, expect=(JobState.QUEUED,))
    assert await env.runner.cancel(job.id) is None
    still = await env.store.get_job(job.id)
    assert still is not None
    assert still.state == JobState.SUBMITTING
    assert still.charge_state == ChargeState.RESERVED


async def test_the_mp4_is_downloaded_when_a_gif_is_listed_first(env: Env) -> None:
    env.fake.script(Timeline(queued_s=0.05, processing_s=0.2, gif_first=True))
    job = await env.run(request())
    assert job.state == JobState.DELIVERED
    [(_, path)] = env.reporter.delivered
    assert media.is_mp4(path)
    task = next(iter(env.fake.tasks.values()))
    assert task.gif_downloads == 0
    assert task.video_downloads == 1


async def test_an_image_whose_preparation_keeps_killing_the_process_fails_after_bounded_attempts(
    env: Env,
) -> None:
    """Each begun preparation is counted in the row before it starts; after the bound, the next start fails
    the job with a refund instead of opening the image again (and dying again)."""
    job, _ = await env.runner.submit(request(image_bytes=png(800, 600), image_name="boom.png"))
    assert job is not None
    # Three earlier starts began preparing this image and died (as a decoder exhausting memory would).
    await env.store.update_job(job.id, prepare_attempts=MAX_PREPARE_ATTEMPTS)
    env.runner.start_job(job.id)
    ended = await env.runner.wait_settled(job.id, 10)
    assert ended.state == JobState.FAILED
    assert ended.charge_state == ChargeState.REFUNDED
    assert "credits were returned" in (str(ended.error_text) or "")
    assert "smaller image" in (str(ended.error_text) or "")
    assert env.fake.submits == []


async def test_each_image_preparation_is_counted_before_it_begins(env: Env) -> None:
    job = await env.run(request(image_bytes=png(800, 600)))
    assert job.state == JobState.DELIVERED
    assert job.prepare_attempts == 1
