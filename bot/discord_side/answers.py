"""Answering an interaction with one sentence, whether or not it was answered already."""

from __future__ import annotations

import logging
from typing import Any

import discord

log = logging.getLogger("bot.app")


async def reply(
    interaction: discord.Interaction, text: str, *, ephemeral: bool = True, **kwargs: Any
) -> None:
    """Answer an interaction whether or not it was answered already; a dead interaction is only logged."""
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=ephemeral, **kwargs)
        else:
            await interaction.response.send_message(text, ephemeral=ephemeral, **kwargs)
    except discord.HTTPException as exc:
        log.warning("could not answer interaction %s: %s %s", interaction.id, exc.status, exc.code)
