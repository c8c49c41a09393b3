"""The Details answer for a job: its settings, model, requester, status, cost, timings and file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..core import video_models
from ..core.models import Entry, Job, JobState, parse_iso
from . import cards
from .embeds import Embed


def file_size(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB" if size >= 1_048_576 else f"{max(1, round(size / 1024))} kB"


def details_embed(job: Job, events: list[dict[str, Any]]) -> Embed:
    embed = Embed(
        title=f"Video #{job.id} — details", description=job.full_prompt, colour=cards.COLOURS["muted"]
    )
    embed.add_field(name="Settings", value=cards.settings_line(job), inline=False)
    embed.add_field(name="Model", value=video_models.display_name(job.model), inline=True)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    made = {Entry.SLASH: "/video", Entry.CONTEXT: "Animate image", Entry.MENTION: "a mention"}.get(
        job.entry, job.entry
    )
    if job.parent_job_id:
        made += f" of #{job.parent_job_id}"
    embed.add_field(name="Made with", value=made, inline=True)
    embed.add_field(name="Status", value=cards.state_line(job), inline=False)
    embed.add_field(name="Task id", value=f"`{job.task_id}`" if job.task_id else "not sent", inline=True)
    plural = "" if job.credits == 1 else "s"
    cost = f"{job.credits} credit{plural} · ${job.cost_usd:.2f} ({job.charge_state})"
    if job.simulated:  # trial mode: counted apart, never billed
        cost = f"{job.credits} trial credit{plural} · simulated, nothing billed ({job.charge_state})"
    embed.add_field(name="Cost", value=cost, inline=True)
    timings = timing_lines(events)
    if timings:
        embed.add_field(name="Timings", value=timings, inline=False)
    if job.video_bytes:
        note = " (re-encoded to fit)" if job.reencoded else ""
        embed.add_field(name="File", value=f"{file_size(job.video_bytes)}{note}", inline=True)
    embed.set_footer(text=cards.footer(job))
    return embed


def timing_lines(events: list[dict[str, Any]]) -> str:
    """Each state the job passed, with the time since it was accepted."""
    states = {s.value for s in JobState}
    marks = [(e["state"], parse_iso(e["at"])) for e in events if e["state"] in states]
    if not marks or marks[0][1] is None:
        return ""
    start = marks[0][1]
    lines = []
    for state, at in marks:
        offset = (at - start) if at else timedelta()
        lines.append(f"{state} +{offset.total_seconds():.1f} s")
    return " · ".join(lines)
