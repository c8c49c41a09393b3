"""The moderation log: one line per finished job in the channel a server's moderators chose.

cogs/server_settings.py feeds it the reporter's `job_final` bot event, so it hears every ending (delivered,
failed, cancelled, undelivered — and a later redelivery). The prompt is member text: it is
escaped and the message is sent with every mention disabled, so nothing in it can ping anyone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from ..core import redaction
from ..core.i18n import Text, _, join, plural, render
from ..core.models import DeliveryRoute, Job, JobState
from ..core.reports import jump_link
from ..core.wording import money
from .cards import settings_line, short_prompt

if TYPE_CHECKING:
    from ..core.store import Store

log = logging.getLogger("bot.modlog")

PROMPT_SHOWN = 300
ICONS = {
    JobState.DELIVERED: "✅",
    JobState.FAILED: "❌",
    JobState.CANCELLED: "🚫",
    JobState.UNDELIVERED: "📦",
}


def safe_text(text: str, limit: int = PROMPT_SHOWN) -> str:
    """Member text for message content: one line, markdown and mentions neutralised, secrets redacted, cut to
    `limit` (redacted before the cut)."""
    text = discord.utils.escape_mentions(
        discord.utils.escape_markdown(short_prompt(redaction.redact(text), limit))
    )
    return text.replace("<#", "<\u200b#").replace("<@", "<\u200b@")  # channel/role mentions too


def outcome_text(job: Job) -> Text:
    if job.state == JobState.DELIVERED:
        if job.delivered_via == DeliveryRoute.CHANNEL:
            return _("posted in the channel")
        if job.delivered_via == DeliveryRoute.DM:
            return _("sent by DM")
        return _("delivered")
    if job.state == JobState.UNDELIVERED:
        return _("**undelivered** — made and paid for, but no channel or DM took it (kept for /jobs)")
    if job.state == JobState.CANCELLED:
        return _("cancelled, credits returned")
    reason = job.error_text or _("no reason given")
    return _("failed: {reason}", reason=reason)


def cost_text(job: Job) -> Text:
    credits = plural("{count} credit", "{count} credits", job.credits)
    if job.simulated:
        return join(credits, _("simulated, not billed"), sep=" · ")
    if job.state in (JobState.DELIVERED, JobState.UNDELIVERED):
        return join(credits, money(job.cost_usd), sep=" · ")
    return plural("{count} credit refunded", "{count} credits refunded", job.credits)


def modlog_line(job: Job, locale: str | None = None) -> str:
    """'✅ #12 · <@1> in <#2> · 6 s · 768P · … · posted · 1 credit · $0.28 · link' + the prompt quoted, in
    `locale` (the server's preferred locale: the line answers no one in particular)."""
    icon = ICONS.get(job.state, "•")
    where = render(_(" in <#{channel}>", channel=str(job.channel_id)), locale) if job.channel_id else ""
    link = jump_link(job.guild_id, job.result_channel_id, job.result_message_id)
    if not link:
        link = jump_link(job.guild_id, job.card_channel_id, job.card_message_id)
    outcome = render(outcome_text(job), locale)
    if job.state not in (JobState.DELIVERED, JobState.UNDELIVERED, JobState.CANCELLED):
        outcome = safe_text(outcome, 220)  # the error quotes Novita and the member's own words
    head = (
        f"{icon} **#{job.id}** · <@{job.user_id}>{where} · {settings_line(job, locale)} · {outcome} · "
        f"{render(cost_text(job), locale)}"
    )
    if link:
        head += f" · <{link}>"
    detail = ""
    if job.error_detail and job.state in (JobState.FAILED, JobState.UNDELIVERED):
        # What went wrong underneath (e.g. Novita's status and message), for the moderators only.
        detail = f"\n-# detail: {safe_text(job.error_detail, 300)}"
    prompt = f"\n> {safe_text(job.full_prompt)}"
    return redaction.clip(head + detail + prompt, 2000)


class ModerationLog:
    """Posts `modlog_line` to the server's moderation-log channel when one is set."""

    def __init__(self, client: discord.Client, store: Store) -> None:
        self.client = client
        self.store = store

    async def on_final(self, job: Job) -> None:
        if job.guild_id is None:
            return
        channel_id = (await self.store.guild_settings(job.guild_id)).modlog_channel_id
        if not channel_id:
            return
        channel = self.client.get_partial_messageable(channel_id, guild_id=job.guild_id)
        guild = self.client.get_guild(job.guild_id)
        locale = str(guild.preferred_locale) if guild is not None else None
        try:
            await channel.send(modlog_line(job, locale), allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("job=%s moderation log %s refused the line: %s %s", job.id, channel_id,
                        exc.status, exc.code)  # fmt: skip
