"""The Details answer for a job, in the reader's words: settings, model, requester, status, cost and file.
Moderators also see the video service's task id and how long each step took."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..core import video_models
from ..core.i18n import Number, Text, _, join, plural, render
from ..core.models import ChargeState, Job, JobState, parse_iso
from ..core.wording import money
from . import cards
from .embeds import Embed

MADE_WITH: dict[str, Text | str] = {
    "slash": "/video",
    "context": _("Animate image"),
    "mention": _("a mention"),
    "regenerate": _("Regenerate"),
    "edit": _("Edit & regenerate"),
    "continue": _("Continue"),
    "cli": _("the command line"),
}


def file_size(size: int) -> Text:
    if size >= 1_048_576:
        return _("{size} MB", size=Number(size / 1_048_576, 1))
    return _("{size} kB", size=max(1, round(size / 1024)))


def cost_text(job: Job) -> Text:
    """What the video costs the member, in their words: credits, and whether they were given back."""
    credits = plural("{count} credit", "{count} credits", job.credits)
    if job.simulated:  # trial mode: counted apart, never billed
        return join(credits, _("trial mode, nothing billed"), sep=" · ")
    if job.charge_state == ChargeState.REFUNDED:
        return join(credits, _("given back"), sep=" · ")
    if job.charge_state == ChargeState.RESERVED:
        return join(credits, _("held until the video is made"), sep=" · ")
    return join(credits, money(job.cost_usd), sep=" · ")


def details_embed(
    job: Job, events: list[dict[str, Any]], *, locale: str | None = None, moderator: bool = False
) -> Embed:
    """`locale`: the reader's. Moderators also get the task id and the per-step timings."""

    def say(text: Text | str) -> str:
        return render(text, locale)

    title = _("Video #{id} — details", id=str(job.id))
    embed = Embed(title=say(title), description=job.full_prompt, colour=cards.COLOURS["muted"])
    embed.add_field(name=say(_("Settings")), value=cards.settings_line(job, locale), inline=False)
    embed.add_field(name=say(_("Model")), value=video_models.display_name(job.model), inline=True)
    embed.add_field(name=say(_("Requested by")), value=f"<@{job.user_id}>", inline=True)
    made: Text | str = MADE_WITH.get(job.entry, job.entry)
    if job.parent_job_id:
        made = _("{how} of #{id}", how=made, id=str(job.parent_job_id))
    embed.add_field(name=say(_("Made with")), value=say(made), inline=True)
    embed.add_field(name=say(_("Status")), value=cards.state_line(job, locale=locale), inline=False)
    embed.add_field(name=say(_("Cost")), value=say(cost_text(job)), inline=True)
    if job.video_bytes:
        size = file_size(job.video_bytes)
        if job.reencoded:
            size = _("{size} (re-encoded to fit)", size=size)
        embed.add_field(name=say(_("File")), value=say(size), inline=True)
    if moderator:
        task = f"`{job.task_id}`" if job.task_id else say(_("not sent"))
        embed.add_field(name=say(_("Task id")), value=task, inline=True)
        timings = timing_lines(events)
        if timings:
            embed.add_field(name=say(_("Timings")), value=timings, inline=False)
    embed.set_footer(text=cards.footer(job, locale))
    return embed


def timing_lines(events: list[dict[str, Any]]) -> str:
    """For moderators: how long the job spent in each state, in the store's state names."""
    states = {s.value for s in JobState}
    marks = [(e["state"], parse_iso(e["at"])) for e in events if e["state"] in states]
    if not marks or marks[0][1] is None:
        return ""
    lines = []
    for (state, at), (_next, later) in zip(marks, [*marks[1:], (None, None)], strict=True):
        if later is None or at is None:
            lines.append(f"{state}")
            continue
        spent: timedelta = later - at
        lines.append(f"{state} {spent.total_seconds():.1f} s")
    return " → ".join(lines)
