"""What members see: the job card through each state, the result, and short texts. Pure rendering.

Prompts are member text: they go into embeds (which never ping) and are cut for display; anything that
goes into message content is escaped and sent with mentions limited to the requester.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import discord

from ..core import video_models
from ..core.models import Job, JobState, utcnow
from ..core.novita import MAX_ETA_S
from ..core.quota import discord_time
from .embeds import Embed

COLOURS = {
    "working": discord.Colour.blurple(),
    "done": discord.Colour.green(),
    "failed": discord.Colour.red(),
    "muted": discord.Colour.light_grey(),
    "warn": discord.Colour.orange(),
}
PROMPT_DISPLAY = 300


def short_prompt(prompt: str, limit: int = PROMPT_DISPLAY) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= limit else prompt[: limit - 1].rstrip() + "…"


def settings_line(job: Job) -> str:
    parts = [
        f"{job.duration} s",
        job.resolution,
        "prompt expansion " + ("on" if job.prompt_expansion else "off"),
    ]
    if job.camera:
        parts.append(f"camera: {job.camera}")
    if job.has_last_frame:
        parts.append("first → last frame")
    elif job.image_path or job.image_url:
        parts.append("from an image")
    return " · ".join(parts)


def progress_bar(percent: float, width: int = 12) -> str:
    filled = max(0, min(width, round(width * percent / 100)))
    return "▰" * filled + "▱" * (width - filled)


def state_line(
    job: Job, queue_position: int | None = None, now: datetime | None = None, notice: str | None = None
) -> str:
    """One line saying where the job is, e.g. 'Generating ▰▰▰▱▱▱ 42 % · ready <t:…:R>'. `notice` is why
    queued jobs are held back, when they are (the runner's `queue_notice`)."""
    now = now or utcnow()
    state = job.state
    if state == JobState.ACCEPTED:
        return "⏳ Getting your request ready…"
    if state == JobState.QUEUED:
        where = f" — position {queue_position}" if queue_position else ""
        held = f"\n⏸️ {notice}" if notice else ""
        return f"🕒 Waiting in line{where}. You can cancel while it waits.{held}"
    if state in (JobState.SUBMITTING, JobState.SUBMITTED) or (
        state == JobState.PROCESSING and job.novita_status == "TASK_STATUS_QUEUED"
    ):
        return "📨 Queued at the video service…"
    if state == JobState.PROCESSING:
        percent = job.progress or 0.0
        line = f"🎬 Generating {progress_bar(percent)} {percent:.0f} %"
        if job.eta_s is not None and job.eta_s > 0:  # bounded where parsed; a row stored before, here
            line += f" · ready {discord_time(now + timedelta(seconds=min(job.eta_s, MAX_ETA_S)))}"
        return line
    if state == JobState.DOWNLOADING:
        return "⬇️ Video ready — downloading it…"
    if state == JobState.DELIVERING:
        return "⬆️ Uploading the video…"
    if state == JobState.DELIVERED:
        return "✅ Done."
    if state == JobState.CANCELLED:
        return "🚫 Cancelled. Your credits were returned."
    if state == JobState.UNDELIVERED:
        return f"📦 {job.error or 'The video could not be posted.'} Use /jobs to get it."
    return f"❌ {job.error or 'The video could not be made. Your credits were returned.'}"


def job_card(
    job: Job, queue_position: int | None = None, now: datetime | None = None, notice: str | None = None
) -> Embed:
    if job.state == JobState.FAILED:
        colour = COLOURS["failed"]
    elif job.state in (JobState.CANCELLED, JobState.UNDELIVERED):
        colour = COLOURS["muted"]
    else:
        colour = COLOURS["working"]
    embed = Embed(title="🎞️ Video", description=short_prompt(job.prompt), colour=colour)
    embed.add_field(name="Settings", value=settings_line(job), inline=False)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Status", value=state_line(job, queue_position, now, notice), inline=False)
    embed.set_footer(text=footer(job))
    return embed


def footer(job: Job) -> str:
    text = f"Job #{job.id} · MiniMax {video_models.display_name(job.model)}"
    return f"{text} · SIMULATED (trial mode, no real video service)" if job.simulated else text


def elapsed(job: Job) -> str:
    end = job.delivered_at or job.finished_at or utcnow()
    seconds = max(0, int((end - job.created_at).total_seconds()))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def result_card(job: Job, quota_line: str | None, reencoded: bool = False) -> Embed:
    embed = Embed(title="🎞️ Your video is ready", description=short_prompt(job.prompt), colour=COLOURS["done"])
    embed.add_field(name="Settings", value=settings_line(job), inline=False)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Took", value=elapsed(job), inline=True)
    if quota_line:
        embed.add_field(name="Credits", value=quota_line, inline=False)
    if reencoded:
        embed.add_field(
            name="Note",
            value="The original was larger than this server's upload limit, so it was re-encoded to fit.",
            inline=False,
        )
    embed.set_footer(text=footer(job))
    return embed


def ready_text(job: Job) -> str:
    """Content for a result posted as a new message: mentions the requester (and only them)."""
    return f"<@{job.user_id}>, your video #{job.id} is ready."
