"""Answering an interaction with one sentence, whether or not it was answered already, in the language of
the member who sent it; `guarded` turns a crash in a handler into that sentence."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import discord

from ..core.i18n import Text, _, render

log = logging.getLogger("bot.app")

OOPS = _("Something went wrong on our side and it has been logged. Please try again.")


def speak(interaction: discord.Interaction, text: Text | str | None) -> str:
    """`text` in the language of the member who sent `interaction`."""
    return render(text, str(interaction.locale))


async def reply(
    interaction: discord.Interaction, text: Text | str, *, ephemeral: bool = True, **kwargs: Any
) -> None:
    """Answer an interaction whether or not it was answered already, in the member's language; a dead
    interaction is only logged."""
    content = speak(interaction, text)
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    try:
        if interaction.response.is_done():
            await interaction.followup.send(content, ephemeral=ephemeral, **kwargs)
        else:
            await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)
    except discord.HTTPException as exc:
        log.warning("could not answer interaction %s: %s %s", interaction.id, exc.status, exc.code)


async def guarded(interaction: discord.Interaction, work: Awaitable[object], what: str) -> None:
    """Run a handler that is not an app command (listeners, buttons): a crash becomes one sentence."""
    try:
        await work
    except Exception:
        log.exception("%s failed (interaction %s)", what, interaction.id)
        try:
            await reply(interaction, OOPS)
        except Exception as exc:  # e.g. the HTTP session closed because the bot is shutting down
            log.warning("could not tell the member about it either: %r", exc)
