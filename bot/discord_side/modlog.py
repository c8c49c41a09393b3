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
from ..core.models import DeliveryRoute, Job, JobState
from ..core.reports import jump_link
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


def outcome_text(job: Job) -> str:
    if job.state == JobState.DELIVERED:
        via = {
            DeliveryRoute.INTERACTION: "delivered",
            DeliveryRoute.CHANNEL: "posted in the channel",
            DeliveryRoute.DM: "sent by DM",
        }
        return via.get(job.delivered_via, "delivered") if job.delivered_via else "delivered"
    if job.state == JobState.UNDELIVERED:
        return "**undelivered** — made and paid for, but no channel or DM took it (kept for /jobs)"
    if job.state == JobState.CANCELLED:
        return "cancelled, credits returned"
    return f"failed: {safe_text(job.error or 'no reason given', 200)}"


def cost_text(job: Job) -> str:
    credits = f"{job.credits} credit" + ("" if job.credits == 1 else "s")
    if job.simulated:
        return f"{credits} · simulated, not billed"
    if job.state in (JobState.DELIVERED, JobState.UNDELIVERED):
        return f"{credits} · ${job.cost_usd:.2f}"
    return f"{credits} refunded"


def modlog_line(job: Job) -> str:
    """'✅ #12 · <@1> in <#2> · 6 s · 768P · … · posted · 1 credit · $0.28 · link' + the prompt quoted."""
    icon = ICONS.get(job.state, "•")
    where = f" in <#{job.channel_id}>" if job.channel_id else ""
    link = jump_link(job.guild_id, job.result_channel_id, job.result_message_id)
    if not link:
        link = jump_link(job.guild_id, job.card_channel_id, job.card_message_id)
    head = (
        f"{icon} **#{job.id}** · <@{job.user_id}>{where} · {settings_line(job)} · {outcome_text(job)} · "
        f"{cost_text(job)}"
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
        try:
            await channel.send(modlog_line(job), allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("job=%s moderation log %s refused the line: %s %s", job.id, channel_id,
                        exc.status, exc.code)  # fmt: skip
