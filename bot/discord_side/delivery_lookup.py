"""After a restart in `delivering`: did an earlier attempt already post this job's video? The places
recorded as attempts (the card, the channel, the DMs) are searched for the bot's own result message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from ..core.models import DeliveryRoute, Job
from ..core.reporting import Delivered, job_log

if TYPE_CHECKING:
    from .app import HailuoBot


async def find_delivery(bot: HailuoBot, job: Job, paths: set[str]) -> Delivered | None:
    """After a restart: did an earlier attempt already post this job's video? Each place is looked at on
    its own: a card deleted meanwhile (404) must not stop the look at the channel."""
    jlog = job_log(job.id)
    looks: list[tuple[str, Callable[[], Awaitable[Delivered | None]]]] = []
    if DeliveryRoute.INTERACTION in paths and job.card_channel_id and job.card_message_id:
        looks.append(("the card", lambda: _card_result(bot, job)))
    channel_id = job.card_channel_id or job.channel_id
    if DeliveryRoute.CHANNEL in paths and channel_id:
        channel = bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
        looks.append(("the channel", lambda: _posted_in(bot, job, DeliveryRoute.CHANNEL, channel, 50)))
    if DeliveryRoute.DM in paths:
        looks.append(("the DMs", lambda: _dm_result(bot, job)))
    for where, look in looks:
        try:
            found = await look()
        except discord.HTTPException as exc:
            jlog.info("could not look for an earlier result in %s (%s %s)", where, exc.status, exc.code)
            continue
        if found is not None:
            return found
    return None


async def _card_result(bot: HailuoBot, job: Job) -> Delivered | None:
    assert job.card_channel_id is not None
    assert job.card_message_id is not None
    channel = bot.get_partial_messageable(job.card_channel_id)
    card = await channel.fetch_message(job.card_message_id)
    return Delivered(DeliveryRoute.INTERACTION, card.channel.id, card.id) if card.attachments else None


async def _dm_result(bot: HailuoBot, job: Job) -> Delivered | None:
    user = bot.get_user(job.user_id) or await bot.fetch_user(job.user_id)
    return await _posted_in(bot, job, DeliveryRoute.DM, user.dm_channel or await user.create_dm(), 20)


async def _posted_in(
    bot: HailuoBot, job: Job, via: DeliveryRoute, channel: discord.abc.Messageable, limit: int
) -> Delivered | None:
    """The bot's own result message for `job` among the channel's last `limit` messages: the one with the
    job's video file (its name is the same in every language, unlike the text)."""
    filename = f"hailuo-{job.id}.mp4"
    me = bot.user.id if bot.user else None
    async for msg in channel.history(limit=limit):
        if msg.author.id == me and any(a.filename.endswith(filename) for a in msg.attachments):
            return Delivered(via, msg.channel.id, msg.id)
    return None
