"""What members see: the job card through each state, the result, and short texts. Pure rendering.

Prompts are member text: they go into embeds (which never ping) and are cut for display; anything that
goes into message content is escaped and sent with mentions limited to the requester.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import discord

from ..core import video_models
from ..core.i18n import Text, _, join, render
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


def settings_line(job: Job, locale: str | None = None) -> str:
    parts: list[Text | str] = [
        _("{seconds} s", seconds=job.duration),
        job.resolution,
        _("prompt expansion on") if job.prompt_expansion else _("prompt expansion off"),
    ]
    if job.camera:
        parts.append(_("camera: {move}", move=job.camera))
    if job.has_last_frame:
        parts.append(_("first → last frame"))
    elif job.image_path or job.image_url:
        parts.append(_("from an image"))
    return " · ".join(render(part, locale or job.locale) for part in parts)


def progress_bar(percent: float, width: int = 12) -> str:
    filled = max(0, min(width, round(width * percent / 100)))
    return "▰" * filled + "▱" * (width - filled)


def state_line(
    job: Job,
    queue_position: int | None = None,
    now: datetime | None = None,
    notice: Text | str | None = None,
    locale: str | None = None,
) -> str:
    """One line saying where the job is, e.g. 'Generating ▰▰▰▱▱▱ 42 % · ready <t:…:R>'. `notice` is why
    queued jobs are held back, when they are (the runner's `queue_notice`)."""
    return render(_state_text(job, queue_position, now or utcnow(), notice), locale or job.locale)


def _state_text(job: Job, queue_position: int | None, now: datetime, notice: Text | str | None) -> Text:
    state = job.state
    if state == JobState.ACCEPTED:
        return _("⏳ Getting your request ready…")
    if state == JobState.QUEUED:
        if queue_position:
            line = _(
                "🕒 Waiting in line — position {position}. You can cancel while it waits.",
                position=queue_position,
            )
        else:
            line = _("🕒 Waiting in line. You can cancel while it waits.")
        return join(line, _("⏸️ {notice}", notice=notice), sep="\n") if notice else line
    if state in (JobState.SUBMITTING, JobState.SUBMITTED) or (
        state == JobState.PROCESSING and job.novita_status == "TASK_STATUS_QUEUED"
    ):
        return _("📨 Queued at the video service…")
    if state == JobState.PROCESSING:
        percent = job.progress or 0.0
        bar = f"{progress_bar(percent)} {percent:.0f} %"
        if job.eta_s is not None and job.eta_s > 0:  # bounded where parsed; a row stored before, here
            ready = discord_time(now + timedelta(seconds=min(job.eta_s, MAX_ETA_S)))
            return _("🎬 Generating {progress} · ready {when}", progress=bar, when=ready)
        return _("🎬 Generating {progress}", progress=bar)
    if state == JobState.DOWNLOADING:
        return _("⬇️ Video ready — downloading it…")
    if state == JobState.DELIVERING:
        return _("⬆️ Uploading the video…")
    if state == JobState.DELIVERED:
        return _("✅ Done.")
    if state == JobState.CANCELLED:
        return _("🚫 Cancelled. Your credits were returned.")
    if state == JobState.UNDELIVERED:
        return _(
            "📦 {reason} Use /jobs to get it.", reason=job.error_text or _("The video could not be posted.")
        )
    return _(
        "❌ {reason}", reason=job.error_text or _("The video could not be made. Your credits were returned.")
    )


def job_card(
    job: Job,
    queue_position: int | None = None,
    now: datetime | None = None,
    notice: Text | str | None = None,
    locale: str | None = None,
) -> Embed:
    """The public card that answers the request: in the requester's language (`job.locale`)."""
    loc = locale or job.locale
    if job.state == JobState.FAILED:
        colour = COLOURS["failed"]
    elif job.state in (JobState.CANCELLED, JobState.UNDELIVERED):
        colour = COLOURS["muted"]
    else:
        colour = COLOURS["working"]
    embed = Embed(title=render(_("🎞️ Video"), loc), description=short_prompt(job.prompt), colour=colour)
    embed.add_field(name=render(_("Settings"), loc), value=settings_line(job, loc), inline=False)
    embed.add_field(name=render(_("Requested by"), loc), value=f"<@{job.user_id}>", inline=True)
    status = state_line(job, queue_position, now, notice, loc)
    embed.add_field(name=render(_("Status"), loc), value=status, inline=False)
    embed.set_footer(text=footer(job, loc))
    return embed


def footer(job: Job, locale: str | None = None) -> str:
    model = video_models.display_name(job.model)
    if job.simulated:
        text = _(
            "Job #{id} · MiniMax {model} · SIMULATED (trial mode, no real video service)",
            id=str(job.id),
            model=model,
        )
    else:
        text = _("Job #{id} · MiniMax {model}", id=str(job.id), model=model)
    return render(text, locale or job.locale)


def elapsed(job: Job, locale: str | None = None) -> str:
    end = job.delivered_at or job.finished_at or utcnow()
    seconds = max(0, int((end - job.created_at).total_seconds()))
    if seconds >= 60:
        took = _("{minutes} min {seconds} s", minutes=seconds // 60, seconds=str(seconds % 60).zfill(2))
    else:
        took = _("{seconds} s", seconds=seconds)
    return render(took, locale or job.locale)


def result_card(
    job: Job, quota_line: Text | str | None, reencoded: bool = False, locale: str | None = None
) -> Embed:
    loc = locale or job.locale
    title = render(_("🎞️ Your video is ready"), loc)
    embed = Embed(title=title, description=short_prompt(job.prompt), colour=COLOURS["done"])
    embed.add_field(name=render(_("Settings"), loc), value=settings_line(job, loc), inline=False)
    embed.add_field(name=render(_("Requested by"), loc), value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name=render(_("Took"), loc), value=elapsed(job, loc), inline=True)
    if quota_line:
        embed.add_field(name=render(_("Credits"), loc), value=render(quota_line, loc), inline=False)
    if reencoded:
        note = _("The original was larger than this server's upload limit, so it was re-encoded to fit.")
        embed.add_field(name=render(_("Note"), loc), value=render(note, loc), inline=False)
    embed.set_footer(text=footer(job, loc))
    return embed


def ready_text(job: Job, locale: str | None = None) -> str:
    """Content for a result posted as a new message: mentions the requester (and only them)."""
    return render(
        _("<@{user}>, your video #{id} is ready.", user=str(job.user_id), id=str(job.id)),
        locale or job.locale,
    )
