"""Trial mode (`NOVITA_MODE=simulate`): an in-process stand-in for Novita's Hailuo video API, every model.

`SimulatedNovita` has the interface the job runner uses on `NovitaClient` (`submit`, `get_result`) and follows
the real service's timeline: queued → processing with `progress_percent` and `eta` → succeed, answered through
the same task-result parser as real answers. Its videos are real, small MP4s made with ffmpeg in a subprocess
(never on the event loop): the first frame slowly zooming for image jobs, a cross-fade from the first to the
last frame when a last frame is given, a moving test pattern for text jobs, all with the prompt and
"SIMULATED" drawn in (text rendered with Pillow, so no system fonts are needed).

Video links: the simulator serves its files from a tiny aiohttp server on 127.0.0.1 (random port,
unguessable paths), so the runner fetches them through exactly the production path (`media.download_video`:
streaming, MP4 check, retries). Nothing in the runner or in bot/core/media/ knows about trial mode. The
alternative, teaching the runner `file://` URLs, would add a production code path that reads local files
named by an API answer, a risk in live mode, and would leave the download path untested in trial mode.

Like the real service it survives a restart of the bot: each task is a small JSON file (and its first frame)
under `MEDIA_DIR/simulated`, and its timeline runs on the wall clock, so a job resumed after a restart finds
its task where it would be. A prompt containing `#fail` ends as a failed task, to show how failures and
refunds look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web
from PIL import Image

from . import media, video_models
from .novita import GenerationRequest, TaskResult, parse_task_result
from .simulate_overlay import draw_overlay
from .simulate_wire import decode_image, document, validate

log = logging.getLogger("bot.simulate")

WARNING = (
    "TRIAL MODE (NOVITA_MODE=simulate): videos are SIMULATED locally and nothing is sent to Novita. "
    "Set NOVITA_MODE=live (the default) and NOVITA_API_KEY to make real videos."
)
FAIL_TAG = "#fail"
FAIL_REASON = "The content may violate our policies (simulated failure: the prompt contains #fail)"
KEEP_S = 24 * 3600  # task files older than this are removed when the simulator starts
_TASK_ID = re.compile(r"sim-[0-9a-f]{32}")


@dataclass
class SimTask:
    task_id: str
    prompt: str
    duration: int
    resolution: str
    created: float  # time.time(): the timeline survives a restart
    has_image: bool = False
    fail: bool = False
    model: str = video_models.DEFAULT_MODEL
    has_last_frame: bool = False


class SimulatedNovita:
    """Novita's submit / task-result, simulated in process. Use `async with`, or `start()` and `close()`."""

    def __init__(
        self,
        folder: Path,
        *,
        queued_s: float = 1.0,
        processing_s: float = 5.0,
        short_side: int = 360,
        fps: int = 24,
        max_renders: int = 2,
        render_timeout_s: float = 120.0,
    ) -> None:
        self.folder = Path(folder)
        self.queued_s = queued_s
        self.processing_s = processing_s
        self.short_side = short_side
        self.fps = fps
        self.render_timeout_s = render_timeout_s
        self._tasks: dict[str, SimTask] = {}
        self._renders: dict[str, asyncio.Task[Path]] = {}
        self._render_slots = asyncio.Semaphore(max_renders)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"SimulatedNovita(folder={str(self.folder)!r}, url={self._url!r})"

    @property
    def base_url(self) -> str:
        return self._url or "simulator://not-started"

    # Lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        removed = await asyncio.to_thread(media.remove_older, self.folder, "sim-*", time.time() - KEEP_S)
        if removed:
            log.info("simulator: removed %d old file(s) from %s", removed, self.folder)
        app = web.Application()
        app.router.add_get("/videos/{name}", self._serve_video)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        log.info("simulator: serving simulated videos at %s", self._url)

    async def close(self) -> None:
        renders = list(self._renders.values())
        for task in renders:
            task.cancel()
        await asyncio.gather(*renders, return_exceptions=True)
        self._renders.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._url = None

    async def __aenter__(self) -> SimulatedNovita:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # The API --------------------------------------------------------------------------------------------
    async def submit(self, request: GenerationRequest) -> str:
        """Check the request as Novita does, record the task, start its video; return the task id."""
        validate(request)
        image = decode_image("image", request.image_data_uri)
        last = decode_image("end_image", request.end_image_data_uri)
        task = SimTask(
            task_id=f"sim-{uuid.uuid4().hex}",
            prompt=request.prompt,
            duration=request.duration,
            resolution=request.resolution,
            created=time.time(),
            has_image=image is not None,
            fail=FAIL_TAG in request.prompt.lower(),
            model=request.model,
            has_last_frame=last is not None,
        )
        await asyncio.to_thread(self._save, task, image, last)
        self._tasks[task.task_id] = task
        if not task.fail:
            self._start_render(task)
        log.info(
            "simulator: task %s created (%s, %s %ss, %s)", task.task_id, task.model,
            task.resolution, task.duration, "first and last frame" if last else "image" if image else "text",
        )  # fmt: skip
        return task.task_id

    async def get_result(self, task_id: str) -> TaskResult:
        """The task's state now, as a task-result document parsed by the same code as Novita's answers."""
        if not task_id:
            raise ValueError("task_id must not be empty")
        task = self._tasks.get(task_id) or await self._load(task_id)
        if task is None:
            return parse_task_result(
                document(task_id, "TASK_STATUS_FAILED", reason="The simulator has no record of this task "
                          "(its files under MEDIA_DIR/simulated were removed)."),
                task_id,
            )  # fmt: skip
        kind = video_models.get(task.model).task_type(task.has_image)
        elapsed = time.time() - task.created
        total = self.queued_s + self.processing_s
        if elapsed < self.queued_s:
            return parse_task_result(
                document(task_id, task_type=kind, status="TASK_STATUS_QUEUED", eta=total - elapsed), task_id
            )
        render = None if task.fail else self._start_render(task)
        finished = elapsed >= total and (render is None or render.done())
        if not finished:
            span = max(self.processing_s, 1e-9)
            progress = min(99, int(99 * (elapsed - self.queued_s) / span))
            eta = max(1.0, total - elapsed)
            return parse_task_result(
                document(
                    task_id, task_type=kind, status="TASK_STATUS_PROCESSING", progress=progress, eta=eta
                ),
                task_id,
            )
        if render is None:
            return parse_task_result(
                document(task_id, task_type=kind, status="TASK_STATUS_FAILED", reason=FAIL_REASON), task_id
            )
        error = render.exception() if not render.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._renders.pop(task_id, None)  # the next poll tries again
            reason = f"The simulator could not make the video: {error}"
            return parse_task_result(
                document(task_id, task_type=kind, status="TASK_STATUS_FAILED", reason=reason), task_id
            )
        url = f"{self.base_url}/videos/{task_id}.mp4"
        return parse_task_result(
            document(task_id, task_type=kind, status="TASK_STATUS_SUCCEED", video_url=url), task_id
        )

    # Tasks on disk --------------------------------------------------------------------------------------
    def _meta_path(self, task_id: str) -> Path:
        return self.folder / f"{task_id}.json"

    def _image_path(self, task_id: str) -> Path:
        return self.folder / f"{task_id}.img"

    def _last_path(self, task_id: str) -> Path:
        return self.folder / f"{task_id}.last.img"

    def _video_path(self, task_id: str) -> Path:
        return self.folder / f"{task_id}.mp4"

    def _save(self, task: SimTask, image: bytes | None, last: bytes | None = None) -> None:
        if image is not None:
            self._image_path(task.task_id).write_bytes(image)
        if last is not None:
            self._last_path(task.task_id).write_bytes(last)
        self._meta_path(task.task_id).write_text(json.dumps(asdict(task)))

    async def _load(self, task_id: str) -> SimTask | None:
        if not _TASK_ID.fullmatch(task_id):
            return None

        def read() -> SimTask | None:
            try:
                return SimTask(**json.loads(self._meta_path(task_id).read_text()))
            except (OSError, ValueError, TypeError):
                return None

        task = await asyncio.to_thread(read)
        if task is not None:
            self._tasks[task_id] = task
        return task

    # Videos ---------------------------------------------------------------------------------------------
    def _start_render(self, task: SimTask) -> asyncio.Task[Path]:
        render = self._renders.get(task.task_id)
        if render is None:
            render = asyncio.create_task(self._render(task), name=f"simulate-{task.task_id}")
            self._renders[task.task_id] = render
        return render

    async def _render(self, task: SimTask) -> Path:
        dest = self._video_path(task.task_id)
        if await asyncio.to_thread(dest.exists):
            return dest
        async with self._render_slots:
            image = self._image_path(task.task_id) if task.has_image else None
            size = await asyncio.to_thread(self._frame_size, image)
            overlay = self.folder / f"{task.task_id}.overlay.png"
            await asyncio.to_thread(draw_overlay, overlay, size, task.prompt)
            part = self.folder / f"{task.task_id}.part.mp4"
            try:
                await self._ffmpeg(self._ffmpeg_args(task, image, overlay, size, part))
                await asyncio.to_thread(part.replace, dest)
            finally:
                for path in (overlay, part):
                    with contextlib.suppress(OSError):
                        await asyncio.to_thread(path.unlink, missing_ok=True)
        log.info("simulator: video for task %s ready (%s)", task.task_id, dest.name)
        return dest

    def _frame_size(self, image: Path | None) -> tuple[int, int]:
        """Even dimensions, short side `short_side`, in the first frame's aspect ratio (as Hailuo does)."""
        width, height = 16, 9
        if image is not None:
            with Image.open(image) as im:
                width, height = im.size
        scale = self.short_side / min(width, height)
        return media.even(width * scale), media.even(height * scale)

    def _ffmpeg_args(
        self, task: SimTask, image: Path | None, overlay: Path, size: tuple[int, int], dest: Path
    ) -> list[str]:
        w, h = size
        frames = max(1, task.duration * self.fps)
        if image is not None and task.has_last_frame:
            # The video moves from the first picture to the last: a plain cross-fade, made by ffmpeg.
            seconds = str(task.duration)
            fit = f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,fps={self.fps}"
            inputs = [
                "-loop", "1", "-t", seconds, "-i", f"file:{image}",
                "-loop", "1", "-t", seconds, "-i", f"file:{self._last_path(task.task_id)}",
            ]  # fmt: skip
            fade = f"A*(1-min(T/{seconds},1))+B*min(T/{seconds},1)"
            video = (
                f"[0:v]{fit},format=yuv420p[a];[1:v]{fit},format=yuv420p[b];[a][b]blend=all_expr='{fade}'[bg]"
            )
            overlay_input = "2:v"
        elif image is not None:
            zoom = (
                f"zoompan=z='min(1+0.0015*on,1.3)':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
                f":d={frames}:s={w}x{h}:fps={self.fps}"
            )
            inputs = ["-i", f"file:{image}"]
            video = f"[0:v]scale={2 * w}:{2 * h},setsar=1,{zoom}[bg]"
            overlay_input = "1:v"
        else:
            inputs = ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={self.fps}"]
            video = "[0:v]setsar=1[bg]"
            overlay_input = "1:v"
        return [
            *inputs,
            "-i", f"file:{overlay}",
            "-filter_complex", f"{video};[bg][{overlay_input}]overlay=0:0:format=auto,format=yuv420p[v]",
            "-map", "[v]", "-frames:v", str(frames), "-r", str(self.fps),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-movflags", "+faststart", "-an",
            f"file:{dest}",
        ]  # fmt: skip

    async def _ffmpeg(self, args: list[str]) -> None:
        """The media package's ffmpeg runner (killed on cancellation and timeout), quiet and overwriting."""
        code, err = await media.run_ffmpeg(["-loglevel", "error", "-y", *args], limit_s=self.render_timeout_s)
        if code != 0:
            last = " | ".join(err.strip().splitlines()[-3:])
            raise RuntimeError(f"ffmpeg exited with {code}: {last}")

    async def _serve_video(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["name"].removesuffix(".mp4")
        path = self._video_path(task_id)
        if not _TASK_ID.fullmatch(task_id) or not await asyncio.to_thread(path.is_file):
            return web.Response(status=404, text="no such video")
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})
