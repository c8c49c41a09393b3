"""The `/usage` report as a Discord embed: totals, top members, channels, models and undelivered jobs.

The figures come from `bot/core/reports.py` (pure data); this module only lays them out within an embed's
limits.
"""

from __future__ import annotations

import discord

from ..core import video_models, wording
from ..core.i18n import Money, Text, _, join, plural, render
from ..core.models import parse_iso
from ..core.quota import BudgetStatus, discord_time
from ..core.reports import Tally, UsageReport
from .embeds import Embed

TOP = 5
FIELD_MAX = 1024
PERIOD_TITLES = {
    "day": _("📊 Server usage — today"),
    "week": _("📊 Server usage — this week"),
    "month": _("📊 Server usage — this month"),
    "all": _("📊 Server usage — all time"),
}
NOTHING_YET = {
    "day": _("No videos were requested today."),
    "week": _("No videos were requested this week."),
    "month": _("No videos were requested this month."),
    "all": _("No videos were requested yet."),
}


def _lines(lines: list[str], more: int = 0, locale: str | None = None) -> str:
    """Join lines within an embed field's limit, saying how many were left out."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if len("\n".join([*out, line])) > FIELD_MAX - 24:  # room for the "…and N more" line
            more += len(lines) - i
            break
        out.append(line)
    return "\n".join([*out, render(_("…and {count} more", count=more), locale)] if more else out)


def _usd(amount: float) -> Money:
    return wording.money(amount)


def _videos(n: int) -> Text:
    return plural("{count} video", "{count} videos", n)


def _made(n: int) -> Text:
    return plural("{count} made", "{count} made", n)


def _credits(n: int) -> Text:
    return plural("{count} credit", "{count} credits", n)


def totals_text(t: Tally) -> Text:
    lines: list[Text] = [
        join(
            _videos(t.jobs),
            _made(t.succeeded),
            plural("{count} failed", "{count} failed", t.failed),
            plural("{count} cancelled", "{count} cancelled", t.cancelled),
            sep=" · ",
        ),
        join(
            plural("{count} second of video", "{count} seconds of video", t.seconds),
            _("{amount} estimated", amount=_usd(t.usd)),
            plural("{count} credit used", "{count} credits used", t.credits),
            sep=" · ",
        ),
    ]
    if t.undelivered:
        lines.append(
            plural("{count} made but not delivered", "{count} made but not delivered", t.undelivered)
        )
    if t.active:
        lines.append(
            plural(
                "{count} in progress ({amount} reserved)",
                "{count} in progress ({amount} reserved)",
                t.active,
                amount=_usd(t.reserved_usd),
            )
        )
    return join(*lines, sep="\n")


def report_embed(report: UsageReport, budget: BudgetStatus | None = None, locale: str | None = None) -> Embed:
    """The /server-usage answer, in `locale` (the moderator's). Mentions inside an embed never ping."""

    def say(text: Text | str) -> str:
        return render(text, locale)

    embed = Embed(title=say(PERIOD_TITLES[report.period]), colour=discord.Colour.blurple())
    if report.since:
        embed.description = say(_("Since {when} (UTC periods).", when=discord_time(report.since, "f")))
    else:
        embed.description = say(_("Since the start."))
    embed.add_field(name=say(_("Totals")), value=say(totals_text(report.totals)), inline=False)
    if budget is not None:
        line = wording.budget_line(budget.left_usd, budget.budget_usd, budget.renews_at, budget.default)
        embed.add_field(name=say(_("Monthly budget")), value=say(line), inline=False)
    if report.members:
        top = [
            say(join(f"{i}. <@{uid}> —", _videos(t.jobs), sep=" "))
            + " · "
            + say(join(_made(t.succeeded), _usd(t.usd), _credits(t.credits), sep=" · "))
            for i, (uid, _name, t) in enumerate(report.members[:TOP], start=1)
        ]
        more = max(0, len(report.members) - TOP)
        embed.add_field(name=say(_("Top members")), value=_lines(top, more, locale), inline=False)
    if report.channels:
        chans = [
            (f"<#{cid}>" if cid else say(_("DMs")))
            + " — "
            + say(
                join(
                    _videos(t.jobs),
                    _("{seconds} s", seconds=t.seconds),
                    _usd(t.usd),
                    sep=" · ",
                )
            )
            for cid, t in report.channels
        ]
        embed.add_field(name=say(_("By channel")), value=_lines(chans, 0, locale), inline=False)
    if report.models:
        per_model = [
            f"{video_models.display_name(key)} — "
            + say(
                join(
                    _videos(t.jobs),
                    _made(t.succeeded),
                    _usd(t.usd),
                    _credits(t.credits),
                    sep=" · ",
                )
            )
            for key, t in report.models
        ]
        embed.add_field(name=say(_("By model")), value=_lines(per_model, 0, locale), inline=False)
    if report.undelivered:
        lost = [
            say(
                _(
                    "#{id} by <@{user}> · {when}",
                    id=str(row.id),
                    user=str(row.user_id),
                    when=_when(row.finished_at or row.created_at),
                )
            )
            for row in report.undelivered
        ]
        embed.add_field(
            name=say(_("Undelivered: made, but no channel or DM took them (requesters can use /jobs)")),
            value=_lines(lost, 0, locale),
            inline=False,
        )
    if report.simulated.jobs:
        t = report.simulated
        line = join(
            _videos(t.jobs),
            _made(t.succeeded),
            plural("{count} failed", "{count} failed", t.failed),
            _("{seconds} s", seconds=t.seconds),
            sep=" · ",
        )
        embed.add_field(
            name=say(_("Simulated in trial mode (not billed, not counted above)")),
            value=say(line),
            inline=False,
        )
    if not report.totals.jobs:
        embed.add_field(name=say(_("Nothing yet")), value=say(NOTHING_YET[report.period]), inline=False)
    return embed


def _when(text: str | None) -> str:
    dt = parse_iso(text)
    return discord_time(dt) if dt else "?"
