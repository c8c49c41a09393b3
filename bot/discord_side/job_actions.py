"""The buttons that act on one job, and the views that carry them: under a result (Regenerate, Edit &
regenerate, Continue, Details, Delete), Cancel on a waiting job card, and Redeliver/Cancel in /jobs.

Every button is one `DynamicItem` whose custom id carries the action and the job id (`hailuo:regen:42`), so
buttons keep working after a restart: nothing lives in view objects, each press reads the job row. The
reporter builds the views with `result_view` and `card_view`; a press lands in the "Buttons" cog
(cogs/buttons.py), found by name since `bot/` never imports `cogs/`.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import discord
from discord import ui

from ..core import quota, wording
from ..core.i18n import Text, _, join, plural, render
from ..core.models import Job, JobState
from .answers import guarded, reply

# action -> (label, style, emoji)
ACTIONS: dict[str, tuple[Text, discord.ButtonStyle, str]] = {
    "regen": (_("Regenerate"), discord.ButtonStyle.primary, "🔁"),
    "edit": (_("Edit & regenerate"), discord.ButtonStyle.secondary, "✏️"),
    "cont": (_("Continue"), discord.ButtonStyle.secondary, "⏭️"),
    "info": (_("Details"), discord.ButtonStyle.secondary, "ℹ️"),
    "del": (_("Delete"), discord.ButtonStyle.danger, "🗑️"),
    "cancel": (_("Cancel"), discord.ButtonStyle.danger, "✖️"),
    "redeliver": (_("Redeliver"), discord.ButtonStyle.primary, "📤"),
}
COSTED = ("regen", "edit", "cont")  # their labels say what the video costs as set
RESULT_ACTIONS = ("regen", "edit", "cont", "info", "del")
WAITING = (JobState.ACCEPTED, JobState.QUEUED)

AS_SET = _("As set: {cost}")
UNLIMITED_LEFT = _("you have unlimited credits")


def credit_words(credits: int) -> Text:
    return plural("{count} credit", "{count} credits", credits)


def cost_label(action: str, job: Job) -> str | None:
    """'Regenerate · 2 credits': what the press costs with the video's own settings (None: no cost shown),
    in the requester's language (the buttons sit under their card)."""
    if action not in COSTED:
        return None
    return render(join(ACTIONS[action][0], credit_words(job.credits), sep=" · "), job.locale)


def cost_note(credits: int, usage: quota.MemberUsage | None) -> Text:
    """The line under a modal's prompt: the cost as set and what the presser has left."""
    left: Text = UNLIMITED_LEFT
    if usage is not None and usage.allowance is not None and usage.left is not None:
        remaining = wording.remaining(usage.left, usage.allowance, usage.policy.period)
        left = _("you have {remaining}", remaining=remaining)
    return join(AS_SET.with_params(cost=credit_words(credits)), left, sep=" · ")


@runtime_checkable
class ActsOnJobs(Protocol):
    """What a press needs from the "Buttons" cog."""

    async def act(self, interaction: discord.Interaction, action: str, job_id: int) -> None: ...


class JobAction(
    ui.DynamicItem[ui.Button[ui.View]],
    template=r"hailuo:(?P<action>regen|edit|cont|info|del|cancel|redeliver):(?P<job>[0-9]{1,18})",
):
    """One button acting on one job; the job id is in the custom id so it survives restarts."""

    def __init__(self, action: str, job_id: int, label: str | None = None, locale: str | None = None) -> None:
        text, style, emoji = ACTIONS[action]
        super().__init__(
            ui.Button(
                label=label or render(text, locale),
                style=style,
                emoji=emoji,
                custom_id=f"hailuo:{action}:{job_id}",
            )
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    def template_match(cls, custom_id: str) -> re.Match[str] | None:
        return cls.__discord_ui_compiled_template__.fullmatch(custom_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> JobAction:
        return cls(match["action"], int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Buttons")  # type: ignore[attr-defined]  # the client is a commands.Bot
        if not isinstance(cog, ActsOnJobs):
            await reply(interaction, _("This button isn't available right now. Try again in a minute."))
            return
        await guarded(interaction, cog.act(interaction, self.action, self.job_id), f"button {self.action}")


def broken_action_id(custom_id: str) -> bool:
    """One of our actions with a job id that can't be read (other cogs' `hailuo:` ids are theirs)."""
    prefix, _sep, rest = custom_id.partition(":")
    action = rest.partition(":")[0]
    return prefix == "hailuo" and action in ACTIONS and JobAction.template_match(custom_id) is None


def on_ephemeral(interaction: discord.Interaction) -> bool:
    """Pressed in the /jobs list (an ephemeral message) rather than on a job card or result."""
    return interaction.message is not None and interaction.message.flags.ephemeral


def result_view(job: Job) -> ui.View:
    """The buttons under a delivered video, the costed ones labelled with what they cost."""
    view = ui.View(timeout=None)
    for action in RESULT_ACTIONS:
        view.add_item(JobAction(action, job.id, label=cost_label(action, job), locale=job.locale))
    return view


def card_view(job: Job) -> ui.View | None:
    """Cancel on the card of a job still waiting its turn; None once it has gone further."""
    if job.state not in WAITING:
        return None
    return ui.View(timeout=None).add_item(JobAction("cancel", job.id, locale=job.locale))
