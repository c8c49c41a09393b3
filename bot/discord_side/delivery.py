"""Discord's side of the job runner: the live job card, and delivery with its fallbacks.

Delivery order: while the interaction token lives, the job card itself becomes the result; after it (or for
entries that answer a message) the result is a new channel message replying to the card or source message
and mentioning the requester; if the channel refuses, a DM; if that fails too, the job is `undelivered` and
the file is kept for /jobs. An upload over the limit is re-encoded to fit.

Exactly once: every attempt is recorded as a job event before it is made. A job resumed in `delivering`
with an earlier attempt first looks for the result it may already have posted, and only posts if none is
found. The card is never edited with a token past its lifetime.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from ..core import media, quota, redaction
from ..core.i18n import Text, _, plural, render
from ..core.models import DeliveryRoute, Entry, Job, JobState
from ..core.reporting import Delivered, DeliveryFailed, job_log
from . import cards, job_actions
from .delivery_lookup import find_delivery
from .delivery_notices import nonce, reply_target, requester_only, tell_requester, token_alive

if TYPE_CHECKING:
    from ..core.jobs import JobRunner
    from ..core.settings import Settings
    from ..core.store import Store
    from .app import HailuoBot

log = logging.getLogger("bot.delivery")

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
ATTEMPT = "delivery-attempt"
CLOSED_MEMORY = 10_000
DETAIL_LIMIT = 1000  # of a failure's technical detail (redacted, then cut)
EXPIRED_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015


class DiscordReporter:
    """Implements `reporting.Reporter` for Discord. Card edits are coalesced per job and throttled."""

    def __init__(self, bot: HailuoBot, settings: Settings, store: Store) -> None:
        self.bot = bot
        self.settings = settings
        self.store = store
        self.runner: JobRunner | None = None
        self._pending: dict[int, Job] = {}
        self._updaters: dict[int, asyncio.Task[None]] = {}
        self._last_edit: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Jobs whose card is final (no more progress edits); bounded, oldest forgotten first.
        self._closed: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._spoilers: set[int] = set()  # jobs whose video is posted as a spoiler

    # Progress -----------------------------------------------------------------------------------------
    def job_changed(self, job: Job) -> None:
        if job.id in self._closed:
            return
        self._pending[job.id] = job
        task = self._updaters.get(job.id)
        if task is None or task.done():
            self._updaters[job.id] = asyncio.create_task(self._card_updater(job.id), name=f"card-{job.id}")

    async def _card_updater(self, job_id: int) -> None:
        try:
            while job_id in self._pending:
                wait = (
                    self._last_edit.get(job_id, 0.0) + self.settings.card_edit_interval_s - time.monotonic()
                )
                if wait > 0:
                    await asyncio.sleep(wait)
                job = self._pending.pop(job_id, None)
                if job is None or job_id in self._closed:
                    return
                fresh = await self.store.get_job(job_id)  # card ids may have been stored since
                if fresh is not None:
                    job = fresh
                position = self.runner.queue_position(job_id) if self.runner else None
                notice = self.runner.queue_notice() if self.runner else None
                async with self._lock(job_id):
                    if job_id in self._closed:
                        return
                    embed = cards.job_card(job, position, notice=notice)
                    await self.edit_card(job, embed=embed, view=job_actions.card_view(job))
                self._last_edit[job_id] = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception:
            job_log(job_id).exception("card update failed")

    def _lock(self, job_id: int) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def _close_card(self, job_id: int) -> None:
        self._closed[job_id] = None
        while len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)
        self._pending.pop(job_id, None)
        task = self._updaters.pop(job_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def edit_card(self, job: Job, **fields: Any) -> discord.Message | None:
        """Edit the job card: through the interaction webhook while its token lives, else as a channel
        message (the bot's own). Returns None when the card is gone or cannot be edited."""
        if job.card_message_id is None or job.card_channel_id is None:
            return None
        jlog = job_log(job.id)
        if token_alive(job):
            assert job.application_id is not None
            assert job.interaction_token is not None
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self.bot)
            try:
                return await webhook.edit_message(job.card_message_id, **fields)
            except discord.HTTPException as exc:
                if exc.code not in (EXPIRED_TOKEN, UNKNOWN_WEBHOOK) and exc.status != 401:
                    jlog.warning("card edit through the interaction failed: %s %s", exc.status, exc.code)
                    if isinstance(exc, discord.NotFound):
                        return None
                    raise
        message = self.bot.get_partial_messageable(job.card_channel_id).get_partial_message(
            job.card_message_id
        )
        try:
            return await message.edit(**fields)
        except (discord.NotFound, discord.Forbidden) as exc:
            jlog.info("card cannot be edited (%s %s)", exc.status, exc.code)
            return None

    # Delivery -----------------------------------------------------------------------------------------
    async def deliver(self, job: Job, video: Path) -> Delivered:
        if self.bot.gateway:  # the guild cache gives the upload limit; a worker asks Discord instead
            await self.bot.wait_until_ready()
        async with self._lock(job.id):
            self._close_card(job.id)
            try:
                delivered = await self._deliver(job, video)
            except media.MediaError as exc:  # it could not be made to fit (ffmpeg missing or failing)
                hours = self.settings.retention_hours
                raise DeliveryFailed(
                    plural(
                        "The video is larger than Discord allows here and couldn't be shrunk. It's kept for "
                        "{count} hour: use /jobs to get it, or ask the bot's operator.",
                        "The video is larger than Discord allows here and couldn't be shrunk. It's kept for "
                        "{count} hours: use /jobs to get it, or ask the bot's operator.",
                        round(hours),
                    ),
                    redaction.clip(f"re-encode failed: {exc}", DETAIL_LIMIT),
                ) from exc
        self._forget(job.id)
        self._notify_final(job, delivered)
        return delivered

    def _notify_final(self, job: Job, delivered: Delivered | None = None) -> None:
        """Tell the cogs (the moderation log) about a job that reached its end: the `job_final` event, heard
        with `@commands.Cog.listener("on_job_final")`."""
        if delivered is not None:
            job = dataclasses.replace(
                job,
                state=JobState.DELIVERED,
                delivered_via=delivered.via,
                result_channel_id=delivered.channel_id,
                result_message_id=delivered.message_id,
            )
        self.bot.dispatch("job_final", job)

    async def _deliver(self, job: Job, video: Path) -> Delivered:
        jlog = job_log(job.id)
        earlier = [e for e in await self.store.events(job.id) if e["state"] == ATTEMPT]
        if earlier:
            found = await find_delivery(self.bot, job, {e["detail"] for e in earlier})
            if found is not None:
                jlog.info("already delivered via %s before the restart; not posting again", found.via)
                return found
        if await self._spoiler(job):
            self._spoilers.add(job.id)
        limit = await self._upload_limit(job)
        upload, reencoded = await self._fit(job, video, limit)
        quota_line = await self._quota_line(job)
        embed = cards.result_card(job, quota_line, reencoded)
        view = job_actions.result_view(job)

        if token_alive(job) and job.entry not in (Entry.CONTEXT, Entry.MENTION):
            await self.store.add_event(job.id, ATTEMPT, DeliveryRoute.INTERACTION)
            try:
                msg = await self._with_413_retry(
                    job,
                    upload,
                    limit,
                    lambda f: self.edit_card(
                        job,
                        content=None,
                        embed=embed,
                        attachments=[f],
                        view=view,
                        allowed_mentions=requester_only(job),
                    ),
                )
                if msg is not None:
                    return Delivered(
                        DeliveryRoute.INTERACTION, job.card_channel_id, job.card_message_id, reencoded
                    )
            except discord.HTTPException as exc:
                jlog.warning(
                    "result through the interaction failed (%s %s); posting instead", exc.status, exc.code
                )

        channel_id = job.card_channel_id or job.channel_id
        if channel_id is not None:
            await self.store.add_event(job.id, ATTEMPT, DeliveryRoute.CHANNEL)
            reply_to = reply_target(job)
            channel = self.bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
            try:
                msg = await self._with_413_retry(
                    job,
                    upload,
                    limit,
                    lambda f: channel.send(
                        cards.ready_text(job),
                        embed=embed,
                        file=f,
                        view=view,
                        reference=reply_to,  # type: ignore[arg-type]  # likewise
                        allowed_mentions=requester_only(job),
                        nonce=nonce(job, DeliveryRoute.CHANNEL),
                    ),
                )
                assert msg is not None
                await self._mark_card_done(job, msg)
                return Delivered(DeliveryRoute.CHANNEL, msg.channel.id, msg.id, reencoded)
            except (discord.Forbidden, discord.NotFound) as exc:
                jlog.warning("channel refused the result (%s %s); trying a DM", exc.status, exc.code)
            except discord.HTTPException as exc:
                jlog.warning("posting the result failed (%s %s); trying a DM", exc.status, exc.code)

        await self.store.add_event(job.id, ATTEMPT, DeliveryRoute.DM)
        try:
            user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            dm_upload, dm_reencoded = await self._fit(job, upload, DEFAULT_UPLOAD_LIMIT)
            if channel_id:
                ready = _(
                    "Your video #{id} is ready (I couldn't post it in <#{channel}>).",
                    id=str(job.id),
                    channel=str(channel_id),
                )
            else:
                ready = _("Your video #{id} is ready.", id=str(job.id))
            msg = await user.send(
                render(ready, job.locale),
                embed=embed,
                file=self._file(job, dm_upload),
                nonce=nonce(job, "dm"),
            )
            await self._mark_card_done(job, None, dm=True)
            return Delivered(DeliveryRoute.DM, msg.channel.id, msg.id, reencoded or dm_reencoded)
        except (discord.HTTPException, media.MediaError) as exc:
            detail = redaction.clip(
                f"channel and DM refused: {getattr(exc, 'status', '')} {getattr(exc, 'code', '')} {exc}",
                DETAIL_LIMIT,
            )
            hours = self.settings.retention_hours
            raise DeliveryFailed(
                plural(
                    "I couldn't post your video in the channel or send it to you by DM. It's kept for "
                    "{count} hour: use /jobs to get it.",
                    "I couldn't post your video in the channel or send it to you by DM. It's kept for "
                    "{count} hours: use /jobs to get it.",
                    round(hours),
                ),
                detail,
            ) from exc

    async def _spoiler(self, job: Job) -> bool:
        """Whether the server posts results as spoilers (`/settings spoiler`)."""
        if job.guild_id is None:
            return False
        return (await self.store.guild_settings(job.guild_id)).spoiler

    def _file(self, job: Job, path: Path) -> discord.File:
        return discord.File(path, filename=f"hailuo-{job.id}.mp4", spoiler=job.id in self._spoilers)

    async def _with_413_retry(self, job: Job, upload: Path, limit: int, send: Any) -> discord.Message | None:
        """Send with the file; if Discord says it is too large after all, re-encode smaller once."""
        try:
            return await send(self._file(job, upload))
        except discord.HTTPException as exc:
            if exc.status != 413:
                raise
            job_log(job.id).warning("413 from Discord; re-encoding below %d bytes", limit // 2)
            smaller, _reencoded = await self._fit(
                job, upload, min(limit, DEFAULT_UPLOAD_LIMIT) // 2, force=True
            )
            return await send(self._file(job, smaller))

    async def _upload_limit(self, job: Job) -> int:
        if not job.guild_id:
            return DEFAULT_UPLOAD_LIMIT
        guild = self.bot.get_guild(job.guild_id)
        if guild is None and not self.bot.gateway:  # a worker has no guild cache: ask Discord once per job
            with contextlib.suppress(discord.HTTPException):
                guild = await self.bot.fetch_guild(job.guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    async def _fit(self, job: Job, video: Path, limit: int, force: bool = False) -> tuple[Path, bool]:
        size = await asyncio.to_thread(lambda: video.stat().st_size)
        if size <= limit and not force:
            return video, False
        target = video.with_name(f"{job.id}-fit{limit}.mp4")
        job_log(job.id).info("re-encoding %d bytes to fit %d", size, limit)
        await self._update_card_quietly(
            job, _("🗜️ The video is larger than this server allows; shrinking it…")
        )
        await media.reencode_to_fit(video, target, int(limit * 0.97))
        return target, True

    async def _update_card_quietly(self, job: Job, line: Text) -> None:
        embed = cards.job_card(job)
        status = render(_("Status"), job.locale)
        embed.set_field_at(len(embed.fields) - 1, name=status, value=render(line, job.locale), inline=False)
        with contextlib.suppress(discord.HTTPException):
            await self.edit_card(job, embed=embed)

    async def _mark_card_done(self, job: Job, result: discord.Message | None, dm: bool = False) -> None:
        if job.card_message_id is None or (result is not None and result.id == job.card_message_id):
            return
        done = cards.job_card(job)
        if dm:
            line = _("✅ Done — sent to you by DM")
        elif result:
            line = _("✅ Done — posted: {link}", link=result.jump_url)
        else:
            line = _("✅ Done — posted")
        status = render(_("Status"), job.locale)
        done.set_field_at(len(done.fields) - 1, name=status, value=render(line, job.locale), inline=False)
        done.colour = cards.COLOURS["done"]
        with contextlib.suppress(discord.HTTPException):
            await self.edit_card(job, embed=done, view=None)

    async def _quota_line(self, job: Job) -> Text | str | None:
        if job.guild_id is None:
            return None
        try:
            usage = await quota.member_usage(
                self.store, self.settings, job.guild_id, job.user_id, job.role_ids
            )
        except Exception:
            job_log(job.id).exception("quota line failed")
            return None
        return usage.summary()

    # Endings ------------------------------------------------------------------------------------------
    async def job_ended(self, job: Job) -> None:
        try:
            async with self._lock(job.id):
                self._close_card(job.id)
                job = await self.store.get_job(job.id) or job
                try:
                    edited = await self.edit_card(job, embed=cards.job_card(job), view=None)
                except discord.HTTPException as exc:
                    job_log(job.id).warning("the final card edit was refused (%s %s)", exc.status, exc.code)
                    edited = None
                if job.state == JobState.FAILED and (edited is None or not token_alive(job)):
                    await tell_requester(self.bot, job)
        finally:  # whatever Discord said, the moderation log hears about the ending
            self._forget(job.id)
            self._spoilers.discard(job.id)
            self._notify_final(job)

    def _forget(self, job_id: int) -> None:
        self._last_edit.pop(job_id, None)
        self._locks.pop(job_id, None)

    async def close(self) -> None:
        tasks = list(self._updaters.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._updaters.clear()
