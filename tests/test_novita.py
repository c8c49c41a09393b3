"""bot.core.novita against the loopback fake Novita, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.core.novita import (
    GenerationRequest,
    NovitaAuthError,
    NovitaBadRequest,
    NovitaClient,
    NovitaConnectionError,
    NovitaError,
    NovitaForbidden,
    NovitaMalformedResponse,
    NovitaNoBalance,
    NovitaNotFound,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTimeout,
    TaskResult,
    TaskStatus,
    parse_task_result,
)
from tests.fakes.novita import FakeNovita, Timeline
from tests.fakes.videos import sample_video

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-live-very-secret-0123456789"

MakeClient = Callable[..., NovitaClient]


def image_bytes(size: tuple[int, int] = (640, 480), fmt: str = "JPEG") -> bytes:
    """A gradient image (distinct pixels, so a pixel comparison means something)."""
    width, height = size
    img = Image.new("RGB", size)
    img.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeNovita]:
    async with FakeNovita(default_timeline=Timeline(queued_s=0.05, processing_s=0.1), seed=1) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def make_client(fake: FakeNovita, session: aiohttp.ClientSession) -> MakeClient:
    def make(**overrides: Any) -> NovitaClient:
        options: dict[str, Any] = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "request_timeout": 2.0,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "retry_after_cap": 0.2,
        }
        options.update(overrides)
        return NovitaClient(session, **options)

    return make


def assert_secret_absent(exc: BaseException, secret: str = SECRET) -> None:
    assert secret not in str(exc)
    assert secret not in repr(exc)
    assert isinstance(exc, NovitaError)
    assert secret not in exc.detail
    assert secret not in str(exc.user_message)
    assert secret not in (exc.reason or "")


# Submit bodies ------------------------------------------------------------------------------------------


async def test_text_submit_body_and_task(fake: FakeNovita, make_client: MakeClient) -> None:
    client = make_client()
    request = GenerationRequest("A cat surfing [Pan left]", duration=10, prompt_expansion=False)
    expected = {
        "prompt": "A cat surfing [Pan left]",
        "duration": 10,
        "resolution": "768P",
        "enable_prompt_expansion": False,
    }
    assert client.build_submit_body(request) == expected

    task_id = await client.submit(request)

    assert fake.submits[-1]["body"] == expected
    assert fake.submits[-1]["created"] is True
    assert fake.submits[-1]["task_id"] == task_id
    assert fake.tasks[task_id].image is None


async def test_image_goes_as_a_data_uri_in_image_and_never_in_image_url(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    original = image_bytes((640, 400))
    uri = data_uri(original)
    source = "https://cdn.discordapp.com/attachments/1/2/photo.png?ex=1"
    request = GenerationRequest("waves", image_data_uri=uri, image_source_url=source)
    task_id = await make_client().submit(request)

    body = fake.bodies["minimax-hailuo-02"][-1]
    assert body["image"] == uri
    assert "image_url" not in body  # the default sends Novita's current field only
    task = fake.tasks[task_id]
    assert task.image == original
    assert (task.image_format, task.image_size) == ("JPEG", (640, 400))
    with Image.open(io.BytesIO(task.image)) as got, Image.open(io.BytesIO(original)) as want:
        assert got.tobytes() == want.tobytes()


async def test_image_url_carries_only_the_sources_http_link(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    uri = data_uri(image_bytes((400, 640), fmt="PNG"), "image/png")
    client = make_client(image_fields=("image", "image_url"))
    source = "https://cdn.discordapp.com/attachments/1/2/photo.png"
    body = client.build_submit_body(GenerationRequest("x", image_data_uri=uri, image_source_url=source))
    assert (body["image"], body["image_url"]) == (uri, source)
    task_id = await client.submit(GenerationRequest("x", image_data_uri=uri, image_source_url=source))
    assert fake.tasks[task_id].image_format == "PNG"

    # No http(s) source (a Continue frame): image_url is left out rather than given a data URI.
    body = client.build_submit_body(GenerationRequest("x", image_data_uri=uri))
    assert "image_url" not in body
    assert body["image"] == uri
    # Only image_url configured, and no link to give: the picture still goes, in `image`.
    only_url = make_client(image_fields=("image_url",))
    assert only_url.build_submit_body(GenerationRequest("x", image_data_uri=uri)) == {
        **client.build_submit_body(GenerationRequest("x")),
        "image": uri,
    }
    body = only_url.build_submit_body(GenerationRequest("x", image_data_uri=uri, image_source_url=source))
    assert body.get("image_url") == source
    assert "image" not in body


async def test_fake_refuses_a_data_uri_in_image_url(fake: FakeNovita, session: aiohttp.ClientSession) -> None:
    """The seed's `image_url` takes an http(s) URL only: the old way of sending the picture fails."""
    url = fake.base_url + "/v3/async/minimax-hailuo-02"
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    uri = data_uri(image_bytes())
    async with session.post(url, json={"prompt": "x", "image_url": uri, "image": uri}, headers=auth) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["reason"] == "INVALID_REQUEST_BODY"
    assert "image_url must be an http(s) URL" in answer["message"]
    assert set(answer) == {"code", "reason", "message", "metadata"}
    assert not fake.tasks


def test_request_repr_hides_image() -> None:
    request = GenerationRequest("p", image_data_uri="data:image/jpeg;base64,AAAA")
    assert "base64" not in repr(request)


_SMALL = data_uri(image_bytes((300, 600)))
_WIDE = data_uri(image_bytes((1000, 390)))


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (GenerationRequest(""), "prompt"),
        (GenerationRequest("x" * 2001), "2000"),
        (GenerationRequest("x", duration=8), "duration"),
        (GenerationRequest("x", resolution="720P"), "resolution"),
        (GenerationRequest("x", duration=10, resolution="1080P"), "1080P"),
        (GenerationRequest("x", image_data_uri=_SMALL), "short side"),
        (GenerationRequest("x", image_data_uri=_WIDE), "aspect ratio"),
        (GenerationRequest("x", image_data_uri="data:image/jpeg;base64,%%%"), "base64"),
        (GenerationRequest("x", image_data_uri=data_uri(b"not an image at all")), "decoded"),
        (GenerationRequest("x", image_data_uri=data_uri(image_bytes(fmt="PNG"))), "image/jpeg"),
        (GenerationRequest("x", image_data_uri=data_uri(image_bytes(fmt="GIF"), "image/gif")), "data URI"),
        (GenerationRequest("x", image_data_uri="ftp://example.invalid/a.jpg"), "URL"),
    ],
    ids=[
        "empty",
        "long",
        "duration",
        "resolution",
        "1080p-10s",
        "small",
        "wide",
        "b64",
        "garbage",
        "mismatch",
        "gif",
        "ftp",
    ],
)
async def test_refused_submit_raises_bad_request(
    fake: FakeNovita, make_client: MakeClient, request_: GenerationRequest, needle: str
) -> None:
    with pytest.raises(NovitaBadRequest) as info:
        await make_client().submit(request_)
    exc = info.value
    assert exc.status == 400
    assert needle in exc.detail
    assert exc.maybe_created is False
    assert exc.request_id == fake.submits[-1]["request_id"]
    assert len(fake.submits) == 1
    assert not fake.tasks


async def test_plain_url_image_is_accepted_without_fetching(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    url = "https://example.invalid/a.jpg"
    task_id = await make_client().submit(GenerationRequest("x", image_data_uri=url))
    assert fake.tasks[task_id].image_url == url


async def test_fake_refuses_other_content_types_and_mismatched_fields(
    fake: FakeNovita, session: aiohttp.ClientSession
) -> None:
    url = fake.base_url + "/v3/async/minimax-hailuo-02"
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    async with session.post(url, data='{"prompt": "x"}', headers=auth) as resp:
        assert resp.status == 400
        assert "Content-Type" in (await resp.json())["message"]
    two = {"prompt": "x", "image": "https://a.example/1.jpg", "image_url": "ftp://a.example/2.jpg"}
    async with session.post(url, json=two, headers=auth) as resp:
        assert resp.status == 400
        assert "image_url" in (await resp.json())["message"]
    not_bool = {"prompt": "x", "enable_prompt_expansion": "yes"}
    async with session.post(url, json=not_bool, headers=auth) as resp:
        assert resp.status == 400
    assert not fake.tasks


# Errors -------------------------------------------------------------------------------------------------


async def test_wrong_key_raises_auth_error_without_leaking_key(
    fake: FakeNovita, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.novita")
    client = make_client(api_key=SECRET)
    assert SECRET not in repr(client)
    with pytest.raises(NovitaAuthError) as info:
        await client.submit(GenerationRequest("x"))
    assert info.value.status == 401
    assert info.value.reason == "INVALID_API_KEY"
    assert_secret_absent(info.value)
    assert len(fake.submits) == 1

    with pytest.raises(NovitaAuthError):
        await client.get_result("whatever")
    assert fake.poll_count("whatever") == 1  # not retried
    assert SECRET not in caplog.text


async def test_key_echoed_by_server_is_redacted(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.api_key = SECRET
    fake.inject("submit", "status", status=401, message=f"key {SECRET} is not valid (Bearer {SECRET})")
    with pytest.raises(NovitaAuthError) as info:
        await make_client(api_key=SECRET).submit(GenerationRequest("x"))
    assert_secret_absent(info.value)
    assert "[redacted]" in info.value.detail


@pytest.mark.parametrize("before", [480, 485, 490])
async def test_a_key_split_by_the_detail_cut_leaves_no_piece(
    fake: FakeNovita, make_client: MakeClient, before: int
) -> None:
    """The server echoes the key so that the 500-character cut of the detail falls inside it."""
    fake.api_key = SECRET
    fake.inject("submit", "status", status=401, message="x" * before + " " + SECRET + " is not valid")
    with pytest.raises(NovitaAuthError) as info:
        await make_client(api_key=SECRET).submit(GenerationRequest("x"))
    assert_secret_absent(info.value)
    assert SECRET[:8] not in str(info.value)
    assert len(info.value.detail) <= 500


async def test_a_key_split_by_the_excerpt_cut_of_a_malformed_answer_leaves_no_piece(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    fake.inject("poll", "respond", body="<html>" + "y" * 180 + SECRET + "</html>", content_type="text/html")
    with pytest.raises(NovitaMalformedResponse) as info:
        await make_client(api_key=SECRET, poll_retries=0).get_result("some-task")
    assert SECRET[:8] not in str(info.value)
    assert "y" * 100 in info.value.detail  # the excerpt is still there, cut after the redaction


async def test_no_balance(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.no_balance = True
    with pytest.raises(NovitaNoBalance) as info:
        await make_client().submit(GenerationRequest("x"))
    exc = info.value
    assert isinstance(exc, NovitaForbidden)
    assert (exc.status, exc.reason, exc.maybe_created) == (403, "NOT_ENOUGH_BALANCE", False)
    assert "out of credit" in str(exc.user_message)
    assert "moderators have been told" in str(exc.user_message)
    assert "operator: top up" in exc.detail
    assert "balance" in exc.detail.lower()
    assert not fake.tasks


async def test_other_403_is_forbidden_not_no_balance(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "status", status=403, reason="MODEL_ACCESS_DENIED", message="No access to model.")
    with pytest.raises(NovitaForbidden) as info:
        await make_client().submit(GenerationRequest("x"))
    assert not isinstance(info.value, NovitaNoBalance)
    assert info.value.reason == "MODEL_ACCESS_DENIED"


async def test_submit_429_with_retry_after_is_retried(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "status", times=2, status=429, retry_after="0.1")
    started = time.monotonic()
    task_id = await make_client(retry_after_cap=5.0).submit(GenerationRequest("x"))
    assert time.monotonic() - started >= 0.2  # Retry-After honoured twice
    assert len(fake.submits) == 3
    assert [s["created"] for s in fake.submits] == [False, False, True]
    assert list(fake.tasks) == [task_id]


async def test_submit_429_retry_after_in_body_and_capped(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "status", status=429, retry_after=0.05, retry_after_in_body=True)
    fake.inject("submit", "status", status=429, retry_after=3600)
    started = time.monotonic()
    await make_client(retry_after_cap=0.1).submit(GenerationRequest("x"))
    assert time.monotonic() - started < 1.0
    assert len(fake.tasks) == 1


async def test_submit_429_exhausted(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "status", times=10, status=429, retry_after="0")
    with pytest.raises(NovitaRateLimited) as info:
        await make_client(submit_retries=2).submit(GenerationRequest("x"))
    assert info.value.retry_after == 0
    assert info.value.maybe_created is False
    assert len(fake.submits) == 3
    assert not fake.tasks


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_submit_5xx_is_not_retried(fake: FakeNovita, make_client: MakeClient, status: int) -> None:
    fake.inject("submit", "status", status=status, create_task=True)
    with pytest.raises(NovitaServerError) as info:
        await make_client().submit(GenerationRequest("x"))
    assert info.value.maybe_created is True
    assert info.value.status == status
    assert len(fake.submits) == 1
    assert len(fake.tasks) == 1  # it did pay: exactly why it must not be retried


async def test_submit_html_error_body(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject(
        "submit",
        "status",
        status=502,
        body="<html><body><h1>502 Bad Gateway</h1></body></html>",
        content_type="text/html",
    )
    with pytest.raises(NovitaServerError) as info:
        await make_client().submit(GenerationRequest("x"))
    assert "502 Bad Gateway" in info.value.detail
    assert info.value.reason is None


async def test_submit_timeout_is_not_retried(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "hang", seconds=1.0)
    with pytest.raises(NovitaTimeout) as info:
        await make_client(request_timeout=0.2).submit(GenerationRequest("x"))
    assert info.value.maybe_created is True
    assert len(fake.submits) == 1
    assert len(fake.tasks) == 1


async def test_submit_reset_after_sending(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "reset", create_task=True)
    with pytest.raises(NovitaConnectionError) as info:
        await make_client().submit(GenerationRequest("x"))
    assert info.value.reached is True
    assert info.value.maybe_created is True
    assert len(fake.submits) == 1
    assert len(fake.tasks) == 1
    assert fake.submits[0]["status"] is None


async def test_submit_malformed_json(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.inject("submit", "malformed")
    with pytest.raises(NovitaMalformedResponse) as info:
        await make_client().submit(GenerationRequest("x"))
    assert info.value.maybe_created is True
    assert len(fake.submits) == 1


async def test_submit_connection_refused_is_retried(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = NovitaClient(
        session, base_url=f"http://127.0.0.1:{port}", api_key=SECRET, backoff_base=0.01, submit_retries=3
    )
    caplog.set_level(logging.INFO, logger="bot.novita")
    with pytest.raises(NovitaConnectionError) as info:
        await client.submit(GenerationRequest("x"))
    assert info.value.reached is False
    assert info.value.maybe_created is False
    assert sum("submit retry" in r.getMessage() for r in caplog.records) == 3
    assert_secret_absent(info.value)


# Polls --------------------------------------------------------------------------------------------------


async def test_poll_retried_through_503_malformed_reset_and_hang(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    client = make_client(request_timeout=0.3)
    task_id = await client.submit(GenerationRequest("x"))
    fake.inject("poll", "status", status=503)
    fake.inject("poll", "malformed")
    fake.inject("poll", "reset")
    fake.inject("poll", "hang", seconds=1.0)
    fake.inject("poll", "status", status=429)
    result = await client.get_result(task_id)
    assert result.task_id == task_id
    assert fake.poll_count(task_id) == 6


async def test_poll_retries_exhausted(fake: FakeNovita, make_client: MakeClient) -> None:
    client = make_client(poll_retries=2)
    task_id = await client.submit(GenerationRequest("x"))
    fake.inject("poll", "status", times=10, status=500)
    with pytest.raises(NovitaServerError) as info:
        await client.get_result(task_id)
    assert info.value.maybe_created is False
    assert fake.poll_count(task_id) == 3


async def test_poll_unknown_task_is_not_retried(fake: FakeNovita, make_client: MakeClient) -> None:
    with pytest.raises(NovitaNotFound) as info:
        await make_client().get_result("no-such-task")
    assert info.value.status == 404
    assert fake.poll_count("no-such-task") == 1


async def test_poll_fault_can_target_one_task(fake: FakeNovita, make_client: MakeClient) -> None:
    client = make_client(poll_retries=0)
    first = await client.submit(GenerationRequest("a"))
    second = await client.submit(GenerationRequest("b"))
    fake.inject("poll", "status", status=500, task_id=second)
    await client.get_result(first)
    with pytest.raises(NovitaServerError):
        await client.get_result(second)


@pytest.mark.parametrize(
    ("task", "videos", "check"),
    [
        (
            {"status": "TASK_STATUS_PROCESSING", "eta": "12.5", "progress_percent": "40"},
            None,
            lambda r: (r.status, r.eta_seconds, r.progress_percent) == (TaskStatus.PROCESSING, 12.5, 40.0),
        ),
        (
            {"status": "TASK_STATUS_QUEUED", "eta": None},
            None,
            lambda r: r.eta_seconds is None and r.progress_percent is None and r.reason == "",
        ),
        (
            {"status": "TASK_STATUS_PROCESSING", "eta": "soon", "progress_percent": True},
            None,
            lambda r: r.eta_seconds is None and r.progress_percent is None,
        ),
        (
            {"status": "TASK_STATUS_WAITING_GPU"},
            None,
            lambda r: (
                r.status is TaskStatus.UNKNOWN
                and r.raw_status == "TASK_STATUS_WAITING_GPU"
                and not r.finished
            ),
        ),
        (
            {"status": "TASK_STATUS_CANCELED", "reason": "cancelled by admin"},
            None,
            lambda r: r.failed and r.finished and r.reason == "cancelled by admin",
        ),
        (
            {"status": "TASK_STATUS_SUCCEED", "eta": 0, "progress_percent": 100},
            [
                {"video_url": "https://cdn.example/v.mp4", "video_url_ttl": "3600", "video_type": "mp4"},
                {"video_type": "mp4"},
                "junk",
            ],
            lambda r: (
                r.succeeded
                and len(r.videos) == 1
                and r.videos[0].ttl_seconds == 3600
                and r.video is not None
                and r.video.url == "https://cdn.example/v.mp4"
            ),
        ),
        (
            {"status": "TASK_STATUS_SUCCEED"},
            [{"video_url": "https://cdn.example/v.gif", "video_url_ttl": None}],
            lambda r: r.videos[0].ttl_seconds is None and r.videos[0].video_type == "",
        ),
        (
            {"status": "TASK_STATUS_SUCCEED"},
            None,
            lambda r: r.succeeded and r.videos == () and r.video is None,
        ),
    ],
    ids=["string-numbers", "nulls", "junk-numbers", "unknown", "cancel", "videos", "ttl-null", "no-videos"],
)
async def test_poll_parses_defensively(
    fake: FakeNovita,
    make_client: MakeClient,
    task: dict[str, Any],
    videos: list[Any] | None,
    check: Callable[[TaskResult], bool],
) -> None:
    payload: dict[str, Any] = {"task": {"task_id": "t-1", **task}}
    if videos is not None:
        payload["videos"] = videos
    fake.inject("poll", "respond", body=payload)
    result = await make_client().get_result("t-1")
    assert check(result), result


@pytest.mark.parametrize(
    ("task", "ttl", "eta", "progress", "ttl_seconds"),
    [
        ({"eta": "1e12", "progress_percent": "1e12"}, "1e300", 24 * 3600.0, 100.0, 30 * 24 * 3600),
        ({"eta": -1e12, "progress_percent": -5}, "-1e12", 0.0, 0.0, 0),
        ({"eta": 1.7e308, "progress_percent": 40}, 3600, 24 * 3600.0, 40.0, 3600),
    ],
    ids=["huge", "negative", "near-float-max"],
)
def test_absurd_numbers_are_held_to_a_sane_range_where_they_are_parsed(
    task: dict[str, Any], ttl: object, eta: float, progress: float, ttl_seconds: int
) -> None:
    payload = {
        "task": {"task_id": "t", "status": "TASK_STATUS_PROCESSING", **task},
        "videos": [{"video_url": "https://cdn.example/v.mp4", "video_url_ttl": ttl, "video_type": "mp4"}],
    }
    result = parse_task_result(payload, "t")
    assert (result.eta_seconds, result.progress_percent) == (eta, progress)
    assert result.videos[0].ttl_seconds == ttl_seconds


@pytest.mark.parametrize("payload", [[], {"task": None}, {"task": {"eta": 3}}, {"videos": []}])
def test_missing_fields_are_malformed(payload: object) -> None:
    with pytest.raises(NovitaMalformedResponse):
        parse_task_result(payload, "t")


async def test_poll_missing_status_is_retried_then_malformed(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    fake.inject("poll", "respond", times=3, body={"task": {"task_id": "t"}})
    with pytest.raises(NovitaMalformedResponse):
        await make_client(poll_retries=2).get_result("t")
    assert fake.poll_count("t") == 3


# Timelines and videos -----------------------------------------------------------------------------------


async def test_full_timeline_and_real_mp4(
    fake: FakeNovita,
    make_client: MakeClient,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.novita")
    sample_video()  # encode once up front so timing below is about the client
    fake.script(Timeline(queued_s=0.3, processing_s=1.0, eta_noise=0.3))
    client = make_client()
    uri = data_uri(image_bytes())
    task_id = await client.submit(GenerationRequest("x", image_data_uri=uri))
    seen: list[TaskResult] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        result = await client.get_result(task_id)
        seen.append(result)
        if result.finished:
            break
        await asyncio.sleep(0.05)
    statuses = [r.status for r in seen]
    assert statuses[0] is TaskStatus.QUEUED
    assert seen[0].progress_percent == 0
    assert seen[0].eta_seconds is not None
    assert seen[0].eta_seconds > 0
    assert TaskStatus.PROCESSING in statuses
    progress = [r.progress_percent for r in seen if r.status is TaskStatus.PROCESSING]
    assert progress == sorted(progress)
    assert any(0 < (p or 0) < 99 for p in progress)
    final = seen[-1]
    assert final.succeeded
    assert (final.progress_percent, final.eta_seconds) == (100, 0)
    video = final.video
    assert video is not None
    assert (video.ttl_seconds, video.video_type) == (3600, "mp4")
    async with session.get(video.url) as resp:
        assert resp.status == 200
        assert resp.content_type == "video/mp4"
        data = await resp.read()
    assert data[4:8] == b"ftyp"
    assert fake.tasks[task_id].video_downloads == 1
    # The log never holds the data URI (nor the key).
    assert uri[40:200] not in caplog.text
    assert fake.api_key not in caplog.text


async def test_failed_task_is_a_result_not_an_error(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.script(
        Timeline(queued_s=0, processing_s=0.05, outcome="fail", reason="The content may violate our policies")
    )
    client = make_client()
    task_id = await client.submit(GenerationRequest("x"))
    await asyncio.sleep(0.1)
    result = await client.get_result(task_id)
    assert result.failed
    assert result.finished
    assert result.reason == "The content may violate our policies"
    assert result.videos == ()


async def test_never_ending_task_stays_processing(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.script(Timeline(queued_s=0, processing_s=0.05, outcome="never"))
    client = make_client()
    task_id = await client.submit(GenerationRequest("x"))
    await asyncio.sleep(0.1)
    result = await client.get_result(task_id)
    assert result.status is TaskStatus.PROCESSING
    assert result.progress_percent == 99


async def test_video_link_expires_and_faults(session: aiohttp.ClientSession) -> None:
    async with FakeNovita(video_ttl_s=0.4, default_timeline=Timeline(queued_s=0, processing_s=0)) as fake:
        client = NovitaClient(session, base_url=fake.base_url, api_key=fake.api_key)
        fake.script(
            Timeline(queued_s=0, processing_s=0),
            Timeline(queued_s=0, processing_s=0, video_status=404),
            Timeline(queued_s=0, processing_s=0, video_not_mp4=True),
            Timeline(queued_s=0, processing_s=0, no_videos=True),
        )
        ok, missing, html, none = [await client.submit(GenerationRequest(p)) for p in "abcd"]
        assert (await client.get_result(none)).videos == ()
        url = (await client.get_result(ok)).videos[0].url
        assert url == fake.video_url(ok)
        async with session.get(url) as resp:
            assert resp.status == 200
        async with session.get(fake.video_url(missing)) as resp:
            assert resp.status == 404
        async with session.get(fake.video_url(html)) as resp:
            assert resp.content_type == "text/html"
        fake.inject("video", "status", status=503)
        async with session.get(url) as resp:
            assert resp.status == 503
        await asyncio.sleep(0.5)
        async with session.get(url) as resp:
            assert resp.status == 403
            assert "expired" in await resp.text()


async def test_video_from_image_and_truncated_download(
    fake: FakeNovita, make_client: MakeClient, session: aiohttp.ClientSession
) -> None:
    fake.script(Timeline(queued_s=0, processing_s=0, video="from_image"))
    task_id = await make_client().submit(GenerationRequest("x", image_data_uri=data_uri(image_bytes())))
    url = fake.video_url(task_id)
    async with session.get(url) as resp:
        full = await resp.read()
    assert full[4:8] == b"ftyp"
    assert full != sample_video().read_bytes()
    fake.inject("video", "reset", after_bytes=1000)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.get(url) as resp:
            await resp.read()


# Running the fake in other ways -------------------------------------------------------------------------


def test_threaded_fake_for_sync_callers() -> None:
    async def run(base_url: str, api_key: str) -> str:
        async with aiohttp.ClientSession() as http:
            client = NovitaClient(http, base_url=base_url, api_key=api_key)
            return await client.submit(GenerationRequest("x"))

    with FakeNovita().threaded() as fake:
        task_id = asyncio.run(run(fake.base_url, fake.api_key))
        assert task_id in fake.tasks
        assert fake.requests[-1]["status"] == 200


async def test_many_tasks_in_flight_are_cheap(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.default_timeline = Timeline(queued_s=60, processing_s=60)
    client = make_client()
    ids = await asyncio.gather(*(client.submit(GenerationRequest(f"p{i}")) for i in range(300)))
    started = time.monotonic()
    results = await asyncio.gather(*(client.get_result(task_id) for task_id in ids))
    assert time.monotonic() - started < 3.0
    assert all(r.status is TaskStatus.QUEUED for r in results)


def test_standalone_fake_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.novita", "--port", "0", "--api-key", "k-123"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert "k-123" not in line

        async def poll() -> int:
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    url + "/v3/async/task-result",
                    params={"task_id": "nope"},
                    headers={"Authorization": "Bearer k-123"},
                ) as resp,
            ):
                body = json.loads(await resp.text())
                assert body["reason"] == "TASK_NOT_FOUND"
                return resp.status

        assert asyncio.run(poll()) == 404
    finally:
        proc.terminate()
        proc.wait(10)


# Models and frames ----------------------------------------------------------------------------------------

_FIRST = data_uri(image_bytes((640, 480)))
_LAST = data_uri(image_bytes((640, 480), fmt="PNG"), "image/png")


@pytest.mark.parametrize(
    ("request_", "endpoint"),
    [
        (GenerationRequest("x", image_data_uri=_FIRST, end_image_data_uri=_LAST), "minimax-hailuo-02"),
        (GenerationRequest("x", model="hailuo-2.3"), "minimax-hailuo-2.3-t2v"),
        (GenerationRequest("x", model="hailuo-2.3", image_data_uri=_FIRST), "minimax-hailuo-2.3-i2v"),
        (
            GenerationRequest("x", model="hailuo-2.3-fast", image_data_uri=_FIRST),
            "minimax-hailuo-2.3-fast-i2v",
        ),
    ],
    ids=["02-both-frames", "2.3-text", "2.3-image", "fast-image"],
)
async def test_each_model_is_submitted_to_its_endpoint(
    fake: FakeNovita, make_client: MakeClient, request_: GenerationRequest, endpoint: str
) -> None:
    task_id = await make_client().submit(request_)
    task = fake.tasks[task_id]
    assert task.endpoint == endpoint
    [body] = fake.bodies[endpoint]
    assert body.get("end_image") == request_.end_image_data_uri
    if request_.end_image_data_uri:
        assert task.end_image is not None
    result = await make_client().get_result(task_id)
    assert result.task_id == task_id


async def test_fake_refuses_per_endpoint_what_novita_documents(
    fake: FakeNovita, session: aiohttp.ClientSession
) -> None:
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    cases = [
        ("minimax-hailuo-2.3-i2v", {"image": _FIRST, "end_image": _LAST}, "end_image is not supported"),
        ("minimax-hailuo-2.3-fast-i2v", {"image": _FIRST, "end_image": _LAST}, "end_image is not supported"),
        ("minimax-hailuo-2.3-i2v", {}, "image is required"),
        ("minimax-hailuo-2.3-fast-i2v", {}, "image is required"),
        ("minimax-hailuo-2.3-t2v", {"image": _FIRST}, "takes no image"),
        ("minimax-hailuo-02", {"end_image": _LAST}, "end_image needs image"),
        ("minimax-hailuo-02", {"image": _FIRST, "end_image": "data:image/jpeg;base64,AAAA"}, "end_image"),
        ("minimax-hailuo-02", {"image_url": _FIRST}, "image_url must be an http(s) URL"),
    ]
    for endpoint, fields, needle in cases:
        url = f"{fake.base_url}/v3/async/{endpoint}"
        async with session.post(url, json={"prompt": "x", **fields}, headers=auth) as resp:
            answer = await resp.json()
        assert resp.status == 400, (endpoint, fields)
        assert needle in answer["message"], (endpoint, answer)
        assert answer["metadata"] == {}
    assert not fake.tasks
    ok = {"prompt": "x", "image": "https://a.example/1.jpg", "image_url": "https://a.example/1.jpg"}
    async with session.post(
        f"{fake.base_url}/v3/async/minimax-hailuo-2.3-i2v", json=ok, headers=auth
    ) as resp:
        assert resp.status == 200


async def test_video_url_ttl_as_an_integer_is_read_too(fake: FakeNovita, make_client: MakeClient) -> None:
    fake.script(Timeline(queued_s=0.01, processing_s=0.02, ttl_as_int=True))
    client = make_client()
    task_id = await client.submit(GenerationRequest("x"))
    async with asyncio.timeout(10):
        while not (result := await client.get_result(task_id)).finished:
            await asyncio.sleep(0.02)
    assert result.videos[0].ttl_seconds == 3600


async def test_billing_balance_400_is_no_balance_by_its_reason(
    fake: FakeNovita, make_client: MakeClient
) -> None:
    fake.no_balance, fake.no_balance_reason = True, "BILLING_BALANCE_NOT_ENOUGH"
    with pytest.raises(NovitaNoBalance) as info:
        await make_client().submit(GenerationRequest("x"))
    assert (info.value.status, info.value.reason) == (400, "BILLING_BALANCE_NOT_ENOUGH")
