"""The `/usage` report as a Discord embed: totals, top members, channels, models and undelivered jobs.

The figures come from `bot/core/reports.py` (pure data); this module only lays them out within an embed's
limits.
"""

from __future__ import annotations

import discord

from ..core import video_models
from ..core.models import parse_iso
from ..core.quota import BudgetStatus, discord_time
from ..core.reports import PERIOD_LABELS, Tally, UsageReport, money, plural
from .embeds import Embed

TOP = 5
FIELD_MAX = 1024


def _lines(lines: list[str], more: int = 0) -> str:
    """Join lines within an embed field's limit, saying how many were left out."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if len("\n".join([*out, line])) > FIELD_MAX - 24:  # room for the "…and N more" line
            more += len(lines) - i
            break
        out.append(line)
    return "\n".join([*out, f"…and {more} more"] if more else out)


def totals_text(t: Tally) -> str:
    text = (
        f"**{plural(t.jobs, 'job')}** · {t.succeeded} made · {t.failed} failed · {t.cancelled} cancelled\n"
        f"**{t.seconds} s** of video · **{money(t.usd)}** estimated · {plural(t.credits, 'credit')} charged"
    )
    if t.undelivered:
        text += f"\n{t.undelivered} made but not delivered"
    if t.active:
        text += f"\n{plural(t.active, 'job')} in progress ({money(t.reserved_usd)} reserved)"
    return text


def report_embed(report: UsageReport, budget: BudgetStatus | None = None) -> Embed:
    """The /server-usage answer. Mentions inside an embed never ping."""
    label = PERIOD_LABELS[report.period]
    embed = Embed(title=f"📊 Server usage — {label}", colour=discord.Colour.blurple())
    embed.description = (
        f"Since {discord_time(report.since, 'f')} (UTC periods)." if report.since else "Since the start."
    )
    embed.add_field(name="Totals", value=totals_text(report.totals), inline=False)
    if budget is not None:
        embed.add_field(name="Monthly budget", value=budget.summary(), inline=False)
    if report.members:
        top = [
            f"{i}. <@{uid}> — {plural(t.jobs, 'job')} · {t.succeeded} made · {money(t.usd)} · "
            f"{plural(t.credits, 'credit')}"
            for i, (uid, _name, t) in enumerate(report.members[:TOP], start=1)
        ]
        embed.add_field(
            name="Top members", value=_lines(top, max(0, len(report.members) - TOP)), inline=False
        )
    if report.channels:
        chans = [
            f"{f'<#{cid}>' if cid else 'DMs'} — {plural(t.jobs, 'job')} · {t.seconds} s · {money(t.usd)}"
            for cid, t in report.channels
        ]
        embed.add_field(name="By channel", value=_lines(chans), inline=False)
    if report.models:
        per_model = [
            f"{video_models.display_name(key)} — {plural(t.jobs, 'job')} · {t.succeeded} made · "
            f"{money(t.usd)} · {plural(t.credits, 'credit')}"
            for key, t in report.models
        ]
        embed.add_field(name="By model", value=_lines(per_model), inline=False)
    if report.undelivered:
        lost = [
            f"#{row.id} by <@{row.user_id}> · {_when(row.finished_at or row.created_at)}"
            for row in report.undelivered
        ]
        embed.add_field(
            name="Undelivered: made, but no channel or DM took them (requesters can use /jobs)",
            value=_lines(lost),
            inline=False,
        )
    if report.simulated.jobs:
        t = report.simulated
        embed.add_field(
            name="Simulated in trial mode (not billed, not counted above)",
            value=f"{plural(t.jobs, 'job')} · {t.succeeded} made · {t.failed} failed · {t.seconds} s",
            inline=False,
        )
    if not report.totals.jobs:
        real = "real " if report.simulated.jobs else ""
        embed.add_field(name="Nothing yet", value=f"No {real}videos were requested {label}.", inline=False)
    return embed


def _when(text: str | None) -> str:
    dt = parse_iso(text)
    return discord_time(dt) if dt else "?"
