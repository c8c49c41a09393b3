"""Who a result or failure notice goes to and how: pings for the requester only, the message it replies
to, the nonce that makes a repeated upload impossible, whether the interaction token still lives, and the
notice of a failure the card can't show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from ..core import redaction
from ..core.i18n import _, render
from ..core.models import Entry, Job, utcnow
from ..core.reporting import job_log

if TYPE_CHECKING:
    from .app import HailuoBot


def requester_only(job: Job) -> discord.AllowedMentions:
    """Pings nobody but the requester, whatever the text contains."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(job.user_id)], replied_user=False
    )


def nonce(job: Job, via: str) -> str:
    """The same for every post of this job's result to one place: with `enforce_nonce` (which discord.py
    sends with any nonce) Discord answers a repeat within a few minutes with the message already made, so a
    retried or resumed upload cannot make a second one. Up to 25 characters."""
    return f"hailuo-{job.id}-{via[0]}"


def token_alive(job: Job, margin_s: float = 5.0) -> bool:
    return bool(
        job.interaction_token
        and job.application_id
        and job.token_expires_at
        and (job.token_expires_at - utcnow()).total_seconds() > margin_s
    )


def reply_target(job: Job) -> discord.MessageReference | None:
    if job.entry in (Entry.CONTEXT, Entry.MENTION) and job.source_message_id:
        target: int | None = job.source_message_id
    else:
        target = job.card_message_id
    if target is None:
        return None
    return discord.MessageReference(
        message_id=target, channel_id=job.channel_id or 0, fail_if_not_exists=False
    )


async def tell_requester(bot: HailuoBot, job: Job) -> None:
    """A failure the card can't show, or shown after the member stopped watching: a reply that notifies
    them in the channel, or a DM when the channel refuses."""
    reason = job.error_text or ""
    said = _(
        "<@{user}>, your video #{id} could not be made. {reason}",
        user=str(job.user_id),
        id=str(job.id),
        reason=reason,
    )
    text = redaction.clip(render(said, job.locale).strip(), 2000)
    jlog = job_log(job.id)
    channel_id = job.card_channel_id or job.channel_id
    if channel_id is not None:
        channel = bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
        try:
            await channel.send(
                text,
                reference=reply_target(job),  # type: ignore[arg-type]  # None: send()'s default
                allowed_mentions=requester_only(job),
            )
            return
        except discord.HTTPException as exc:
            jlog.warning("the channel refused the failure notice (%s %s); trying a DM", exc.status, exc.code)
    try:
        user = bot.get_user(job.user_id) or await bot.fetch_user(job.user_id)
        if channel_id:
            said = _(
                "Your video #{id} in <#{channel}> could not be made. {reason}",
                id=str(job.id),
                channel=str(channel_id),
                reason=reason,
            )
        else:
            said = _("Your video #{id} could not be made. {reason}", id=str(job.id), reason=reason)
        await user.send(redaction.clip(render(said, job.locale).strip(), 2000))
    except discord.HTTPException as exc:
        jlog.warning("the failure notice could not be sent by DM either (%s %s)", exc.status, exc.code)
