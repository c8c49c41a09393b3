"""The buttons under a result (Regenerate, Edit & regenerate, Continue, Details, Delete), Cancel on a waiting
job card, and Redeliver/Cancel in /jobs.

Every button is one `DynamicItem` whose custom id carries the action and the job id (`hailuo:regen:42`), so
buttons keep working after a restart: nothing lives in view objects, each press reads the job row. A custom
id is member-controlled input: an unknown job, a job from another server, or a Delete/Cancel by someone who
may not gets one plain sentence.

The buttons themselves and the views the reporter attaches live in `bot/discord_side/job_actions.py`;
reusing a job's frames (Regenerate, Edit, Continue) in `bot/discord_side/frame_reuse.py`, the Details answer
in `bot/discord_side/details.py`. This cog is the single place every job-button press lands, with the
permission and cost checks each action shares.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.core.i18n import Text, _, plural
from bot.core.models import Entry, InvalidTransition, Job, JobState
from bot.core.validation import MAX_PROMPT, check_options
from bot.discord_side import cards
from bot.discord_side.answers import guarded, reply
from bot.discord_side.details import details_embed
from bot.discord_side.forms import (
    VideoForm,
    custom_id_of,
    read_form,
    send_modal,
    settings_modal,
)
from bot.discord_side.frame_reuse import FrameReuse, file_exists, video_gone
from bot.discord_side.job_actions import WAITING, JobAction, broken_action_id, cost_note, on_ephemeral
from bot.discord_side.permissions import is_moderator

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.buttons")

MODAL = re.compile(r"hailuo:m:(?P<kind>edit|cont):(?P<job>[0-9]{1,18})")

UNKNOWN_JOB = _(
    "That video isn't known in this server. It may be from another server, or the button is broken."
)
NOT_YOURS = {
    "delete": _("Only the member who asked for video #{id}, or a moderator, can delete it."),
    "cancel": _("Only the member who asked for video #{id}, or a moderator, can cancel it."),
    "redeliver": _("Only the member who asked for video #{id}, or a moderator, can redeliver it."),
}
TOO_LATE = _("Video #{id} has already been sent to the video service, so it can't be cancelled any more.")


class Buttons(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        self.frames = FrameReuse(bot)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(JobAction)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobAction)
        self.frames.close()

    # Dispatch ----------------------------------------------------------------------------------------
    async def act(self, interaction: discord.Interaction, action: str, job_id: int) -> None:
        job = await self.job_here(interaction, job_id)
        if job is not None:
            await getattr(self, f"on_{action}")(interaction, job)

    async def job_here(self, interaction: discord.Interaction, job_id: int) -> Job | None:
        """The job, if it exists and belongs to the server the button was pressed in."""
        job = await self.bot.store.get_job(job_id)
        if job is None or interaction.guild_id is None or job.guild_id != interaction.guild_id:
            await reply(interaction, UNKNOWN_JOB)
            return None
        return job

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        custom_id = custom_id_of(interaction)
        if interaction.type == discord.InteractionType.modal_submit:
            match = MODAL.fullmatch(custom_id)
            if match is not None:
                work = self.modal_submitted(interaction, match["kind"], int(match["job"]))
                await guarded(interaction, work, f"{match['kind']} modal")
        elif interaction.type == discord.InteractionType.component and broken_action_id(custom_id):
            await reply(interaction, _("That button isn't valid any more."))

    async def may_manage(self, interaction: discord.Interaction, job: Job) -> bool:
        """The requester, a moderator (`bot/discord_side/permissions.py`), or one who may manage messages."""
        if interaction.user.id == job.user_id or interaction.permissions.manage_messages:
            return True
        return await is_moderator(interaction)

    # New jobs from a result ----------------------------------------------------------------------------
    async def job_cost(self, interaction: discord.Interaction, job: Job) -> tuple[int, float]:
        """What the same video costs the presser now, in this server."""
        return await self.bot.starter.costs(interaction.guild_id, job.model, job.resolution, job.duration)

    async def on_regen(self, interaction: discord.Interaction, job: Job) -> None:
        refusal = await self.bot.starter.precheck(interaction, await self.job_cost(interaction, job))
        if refusal:  # before the frames are read again: one sentence saying what to do
            await reply(interaction, refusal)
            return
        image, refusal = await self.frames.rerun_image(job)
        if refusal is None:  # Regenerate keeps both frames
            last, refusal = await self.frames.rerun_last_frame(job)
            image.update(last)
        if refusal:
            await reply(interaction, refusal)
            return
        request = self.bot.starter.interaction_request(
            interaction,
            prompt=job.prompt,
            camera=job.camera,
            duration=job.duration,
            resolution=job.resolution,
            prompt_expansion=job.prompt_expansion,
            entry=Entry.REGENERATE,
            parent_job_id=job.id,
            source_message_id=job.source_message_id,
            model=job.model,
            **image,
        )
        await self.bot.starter.start_from_interaction(
            interaction, request, lambda text: reply(interaction, text)
        )

    async def allowance_note(
        self, interaction: discord.Interaction, job: Job
    ) -> tuple[Text | str | None, Text]:
        """Whether even the cheapest video would be refused (the modal lets the member pick a cheaper one
        than the job's), and the modal's cost line."""
        refusal, usage = await self.bot.starter.allowance(interaction)
        credits, _usd = await self.job_cost(interaction, job)
        return refusal, cost_note(credits, usage)

    async def on_edit(self, interaction: discord.Interaction, job: Job) -> None:
        refusal, note = await self.allowance_note(interaction, job)
        if refusal:
            await reply(interaction, refusal)
            return
        prompt = job.full_prompt if len(job.full_prompt) <= MAX_PROMPT else job.prompt
        modal = settings_modal(
            f"hailuo:m:edit:{job.id}", _("Edit & regenerate #{id}", id=str(job.id)), prompt=prompt,
            prompt_note=note, locale=str(interaction.locale),
            duration=job.duration, resolution=job.resolution, prompt_expansion=job.prompt_expansion,
            model=job.model, models=await self.model_choices(interaction, job),
        )  # fmt: skip
        await send_modal(interaction, modal)

    async def on_cont(self, interaction: discord.Interaction, job: Job) -> None:
        if not await file_exists(job.video_path):
            await reply(interaction, video_gone(job.id, self.bot.settings.retention_hours))
            return
        refusal, note = await self.allowance_note(interaction, job)
        if refusal:
            await reply(interaction, refusal)
            return
        self.frames.frame_task(job)  # read the last frame while the member types
        modal = settings_modal(
            f"hailuo:m:cont:{job.id}", _("Continue video #{id}", id=str(job.id)),
            prompt_label=_("What happens next?"), prompt_note=note, locale=str(interaction.locale),
            placeholder=_("Describe how the video continues from its last frame"),
            duration=job.duration, resolution=job.resolution, prompt_expansion=job.prompt_expansion,
            model=job.model, models=await self.model_choices(interaction, job),
        )  # fmt: skip
        await send_modal(interaction, modal)

    async def model_choices(self, interaction: discord.Interaction, job: Job) -> tuple[str, ...]:
        """The models the modal offers: the server's, with the job's own first (preselected)."""
        allowed = await self.bot.starter.allowed_models(interaction.guild_id)
        return allowed if job.model in allowed else (job.model, *allowed)

    async def modal_submitted(self, interaction: discord.Interaction, kind: str, job_id: int) -> None:
        job = await self.job_here(interaction, job_id)
        if job is None:
            return
        form = read_form(
            interaction, VideoForm(job.prompt, job.duration, job.resolution, job.prompt_expansion, job.model)
        )
        refusal: Text | str | None = check_options(form.prompt, form.duration, form.resolution)
        if refusal:
            await reply(interaction, refusal)
            return
        fields: dict[str, Any] = {
            "prompt": form.prompt, "duration": form.duration, "resolution": form.resolution,
            "prompt_expansion": form.prompt_expansion, "parent_job_id": job.id, "model": form.model,
        }  # fmt: skip
        if kind == "edit":
            image, refusal = await self.frames.rerun_image(job)
            # The modal showed the camera move inside the prompt, so the member's text is the whole prompt.
            keeps_camera = job.camera is not None and len(job.full_prompt) > MAX_PROMPT
            fields.update(entry=Entry.EDIT, camera=job.camera if keeps_camera else None, **image)
            fields["source_message_id"] = job.source_message_id
            if refusal is None:  # both frames, as Regenerate
                last, refusal = await self.frames.rerun_last_frame(job)
                fields.update(last)
        else:
            frame, refusal = await self.frames.last_frame(job)
            fields.update(
                entry=Entry.CONTINUE, image_bytes=frame, image_name=f"video-{job.id}-last-frame.jpg"
            )
        if refusal:
            await reply(interaction, refusal)
            return
        request = self.bot.starter.interaction_request(interaction, **fields)
        await self.bot.starter.start_from_interaction(
            interaction, request, lambda text: reply(interaction, text)
        )

    # Details and Delete --------------------------------------------------------------------------------
    async def on_info(self, interaction: discord.Interaction, job: Job) -> None:
        events = await self.bot.store.events(job.id)
        moderator = await is_moderator(interaction)
        embed = details_embed(job, events, locale=str(interaction.locale), moderator=moderator)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def on_del(self, interaction: discord.Interaction, job: Job) -> None:
        if not await self.may_manage(interaction, job):
            await reply(interaction, NOT_YOURS["delete"].with_params(id=str(job.id)))
            return
        message = interaction.message
        if message is None or message.id not in (job.result_message_id, job.card_message_id):
            await reply(interaction, _("That button doesn't belong to this message."))
            return
        await interaction.response.defer()
        try:
            await message.delete()
        except discord.HTTPException as exc:
            log.warning("job=%s result could not be deleted: %s %s", job.id, exc.status, exc.code)
            await reply(interaction, _("I couldn't delete that message. Ask a moderator to remove it."))
            return
        await self.bot.store.add_event(job.id, "result-deleted", f"by {interaction.user.id}")
        log.info("job=%s result message deleted by %s", job.id, interaction.user.id)

    # Cancel and Redeliver -----------------------------------------------------------------------------
    async def on_cancel(self, interaction: discord.Interaction, job: Job) -> None:
        if not await self.may_manage(interaction, job):
            await reply(interaction, NOT_YOURS["cancel"].with_params(id=str(job.id)))
            return
        if job.state not in WAITING:
            await reply(interaction, self._not_waiting(job))
            return
        await interaction.response.defer()
        if interaction.user.id == job.user_id:
            why = _("Cancelled by the requester.")
        else:
            why = _("Cancelled by a moderator.")
        cancelled = await self.bot.runner.cancel(job.id, why)
        if cancelled is None:
            fresh = await self.bot.store.get_job(job.id)
            await reply(interaction, self._not_waiting(fresh or job))
            return
        log.info("job=%s cancelled by %s", job.id, interaction.user.id)
        if on_ephemeral(interaction):
            await self.refresh_list(interaction, job.user_id)
        else:  # the reporter edits the card too; this makes sure the presser sees it at once
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(embed=cards.job_card(cancelled), view=None)

    @staticmethod
    def _not_waiting(job: Job) -> Text:
        if job.state in (JobState.CANCELLED, JobState.FAILED):
            return _("Video #{id} has already ended.", id=str(job.id))
        if job.state in (JobState.DELIVERED, JobState.UNDELIVERED):
            return _("Video #{id} is already finished.", id=str(job.id))
        return TOO_LATE.with_params(id=str(job.id))

    async def on_redeliver(self, interaction: discord.Interaction, job: Job) -> None:
        if not await self.may_manage(interaction, job):
            await reply(interaction, NOT_YOURS["redeliver"].with_params(id=str(job.id)))
            return
        if job.state != JobState.UNDELIVERED:
            await reply(interaction, _("Video #{id} isn't waiting to be delivered.", id=str(job.id)))
            return
        if not await file_exists(job.video_path):
            hours = round(self.bot.settings.retention_hours)
            gone = plural(
                "Video #{id} is no longer kept (videos are kept for {count} hour).",
                "Video #{id} is no longer kept (videos are kept for {count} hours).",
                hours,
                id=str(job.id),
            )
            await reply(interaction, gone)
            return
        await interaction.response.defer()
        try:
            await self.bot.runner.redeliver(job.id)
        except InvalidTransition:
            await reply(interaction, _("Video #{id} is already being delivered.", id=str(job.id)))
            return
        log.info("job=%s redelivery asked by %s", job.id, interaction.user.id)
        if on_ephemeral(interaction):
            await self.refresh_list(interaction, job.user_id)
        again = _("Posting video #{id} again. It will appear in this channel shortly.", id=str(job.id))
        await reply(interaction, again)

    async def refresh_list(self, interaction: discord.Interaction, user_id: int) -> None:
        jobs_cog = self.bot.get_cog("Jobs")
        render = getattr(jobs_cog, "render", None)
        if render is None or interaction.guild_id is None:
            return
        embed, view = await render(interaction.guild_id, user_id, str(interaction.locale))
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(embed=embed, view=view)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Buttons(bot))
