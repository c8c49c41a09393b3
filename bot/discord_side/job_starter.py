"""One way to start a job, for every entry (/video, Animate, mentions, the result buttons): check the
request against the options, the model and the server's rules, let the runner admit it (the atomic quota
check), post the job card, store where the card is, then start the job.

The bot owns one `JobStarter` (`HailuoBot.starter`); the cogs only say how their card is posted (an
interaction response or a reply to a message) and how a refusal is told.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from ..core import blocklist, metrics, quota, video_models
from ..core.i18n import Text, _
from ..core.models import Job, JobRequest, utcnow
from ..core.preferences import Preferences
from ..core.validation import check_options
from . import cards
from .job_actions import card_view
from .missing import or_missing

if TYPE_CHECKING:
    from .app import HailuoBot

log = logging.getLogger("bot.job_starter")


def member_roles(user: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(user, "roles", ()) if not role.is_default())


class JobStarter:
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    # Checks ---------------------------------------------------------------------------------------------
    async def server_rules(self, guild_id: int | None, channel_id: int | None, prompt: str) -> Text | None:
        """The server's own rules: allowed channels and the prompt blocklist."""
        if guild_id is None:
            return None
        rules = await self.bot.store.guild_settings(guild_id)
        allowed = rules.allowed_channels
        if allowed and channel_id not in allowed:
            where = ", ".join(f"<#{c}>" for c in allowed[:5])
            return _("Videos can't be made in this channel. Try {channels}.", channels=where)
        hit = await blocklist.screen(prompt, rules.blocklist)
        if hit is not None:
            if hit.startswith("re:"):
                return _(
                    "Your prompt contains a blocked pattern, which this server doesn't allow. "
                    "Change it and try again."
                )
            return _(
                "Your prompt contains “{word}”, which this server doesn't allow. Change it and try again.",
                word=hit,
            )
        return None

    async def allowed_models(self, guild_id: int | None) -> tuple[str, ...]:
        """The models this server lets its members use (all of them outside a server)."""
        if guild_id is None:
            return video_models.MODEL_KEYS
        return video_models.allowed_models(await self.bot.store.guild_settings(guild_id))

    async def model_refusal(self, request: JobRequest) -> Text | None:
        """Whether the chosen model can serve this request here: frames it takes, the server's choice."""
        has_image = bool(request.image_url or request.image_bytes is not None or request.image_path)
        has_last = bool(request.last_frame_url or request.last_frame_bytes is not None)
        allowed = await self.allowed_models(request.guild_id)
        return video_models.refusal(request.model, has_image, has_last, allowed)

    async def admit(self, request: JobRequest) -> tuple[Job | None, Text | str]:
        refusal: Text | str | None = check_options(
            request.prompt, request.duration, request.resolution, request.camera
        )
        refusal = refusal or await self.model_refusal(request)
        refusal = refusal or await self.server_rules(request.guild_id, request.channel_id, request.prompt)
        if refusal:
            return None, refusal
        job, decision = await self.bot.runner.submit(request)
        return job, decision.message

    async def precheck(
        self, interaction: discord.Interaction, cost: tuple[int, float] | None = None
    ) -> Text | str | None:
        """Before asking for a prompt in a modal (or reading frames): would the press be refused anyway?
        `cost` (credits, USD) is what it costs; None: the cheapest video this server offers."""
        refusal, _ = await self.allowance(interaction, cost)
        return refusal

    async def allowance(
        self, interaction: discord.Interaction, cost: tuple[int, float] | None = None
    ) -> tuple[Text | str | None, quota.MemberUsage | None]:
        """`precheck`'s answer, and the member's usage when the rules let them in (for showing it)."""
        refusal = await self.server_rules(interaction.guild_id, interaction.channel_id, "")
        if refusal:
            return refusal, None
        settings, user = self.bot.settings, interaction.user
        usage = await quota.member_usage(
            self.bot.store, settings, interaction.guild_id, user.id, member_roles(user)
        )
        credits, usd = cost or await self.cheapest(interaction.guild_id)
        decision = quota.decide(usage.policy, usage.usage, credits, usd, utcnow())
        return (None, usage) if decision.ok else (decision.message, usage)

    async def costs(
        self, guild_id: int | None, model: str, resolution: str, duration: int
    ) -> tuple[int, float]:
        """(credits, USD) of one kind of video in this server, with its own credit table."""
        row = await self.bot.store.guild_settings(guild_id) if guild_id is not None else None
        credits = quota.credit_table(self.bot.settings, row, model)[(resolution, duration)]
        return credits, video_models.price(self.bot.settings, model, resolution, duration)

    async def cheapest(self, guild_id: int | None) -> tuple[int, float]:
        """The fewest credits and dollars any video this server offers costs."""
        row = await self.bot.store.guild_settings(guild_id) if guild_id is not None else None
        settings = self.bot.settings
        allowed = await self.allowed_models(guild_id) or video_models.MODEL_KEYS
        credits = min(min(quota.credit_table(settings, row, m).values()) for m in allowed)
        usd = min(video_models.price(settings, m, r, d) for m in allowed for r, d in quota.VIDEO_KINDS)
        return credits, usd

    async def member_prefs(self, interaction: discord.Interaction) -> Preferences:
        """The member's /preferences in this server (none outside one)."""
        if interaction.guild_id is None:
            return Preferences()
        return await self.bot.store.member_prefs(interaction.guild_id, interaction.user.id)

    # Starting -------------------------------------------------------------------------------------------
    def interaction_request(self, interaction: discord.Interaction, **fields: object) -> JobRequest:
        user = interaction.user
        return JobRequest(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=user.id,
            user_name=str(user),
            role_ids=member_roles(user),
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=interaction.created_at + self.bot.token_lifetime(),
            locale=str(interaction.locale),
            **fields,  # type: ignore[arg-type]  # each field arrives with its JobRequest type
        )

    async def start(
        self,
        request: JobRequest,
        *,
        post_card: Callable[[Job], Awaitable[discord.Message | None]],
        refuse: Callable[[Text | str], Awaitable[object]],
        cancel_reason: Text,
    ) -> Job | None:
        """Admit, post the card (`post_card` returns it, or None when it can't be read back), store where the
        card is, start the job. A card Discord refuses cancels the job with `cancel_reason` (a refund)."""
        job, refusal = await self.admit(request)
        if job is None:
            await refuse(refusal)
            return None
        try:
            card = await post_card(job)
        except discord.HTTPException as exc:
            log.warning("job=%s the job card could not be posted (%s); cancelling", job.id, exc.status)
            await self.bot.runner.cancel(job.id, cancel_reason)
            return None
        if card is not None:
            job = await self.bot.store.update_job(
                job.id, card_channel_id=card.channel.id, card_message_id=card.id
            )
        self.bot.runner.start_job(job.id)
        return job

    async def start_from_interaction(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        refuse: Callable[[Text | str], Awaitable[object]],
    ) -> Job | None:
        """The job card is the interaction's answer (inside Discord's 3-second window)."""

        async def post_card(job: Job) -> discord.Message | None:
            await interaction.response.send_message(
                embed=cards.job_card(job),
                allowed_mentions=discord.AllowedMentions.none(),
                view=or_missing(card_view(job)),
            )
            metrics.first_response(interaction.created_at, discord.utils.utcnow())
            try:
                return await interaction.original_response()
            except discord.HTTPException as exc:
                log.warning("job=%s could not read back the job card (%s)", job.id, exc.status)
                return None

        return await self.start(
            request,
            post_card=post_card,
            refuse=refuse,
            cancel_reason=_("Discord didn't accept the answer in time."),
        )

    async def start_from_message(
        self, message: discord.Message, request: JobRequest, refuse: Callable[[Text | str], Awaitable[object]]
    ) -> Job | None:
        """The job card replies to the member's message (mentions)."""

        async def post_card(job: Job) -> discord.Message:
            return await message.reply(
                embed=cards.job_card(job),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
                view=card_view(job),  # type: ignore[arg-type]  # None is reply()'s own default
            )

        return await self.start(
            request, post_card=post_card, refuse=refuse, cancel_reason=_("I couldn't post in this channel.")
        )
