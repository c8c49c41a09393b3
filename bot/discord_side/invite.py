"""The invite link: exactly the permissions the bot uses, the two scopes, and the application id (offline).

The bot reads the channels it answers in, posts job cards and results as embeds with the video attached, and
replies to messages (which needs Read Message History). Nothing more: no external emojis, no reactions, no
management permissions. Moderator commands check the *member's* permissions, not the bot's.
"""

from __future__ import annotations

import discord

from ..core.bot_token import resolve_application_id
from ..core.settings import Settings

# Name in discord.py -> the label server owners see on Discord's authorisation screen.
PERMISSION_LABELS: dict[str, str] = {
    "view_channel": "View Channels",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}
SCOPES = ("bot", "applications.commands")


def permissions() -> discord.Permissions:
    return discord.Permissions(**dict.fromkeys(PERMISSION_LABELS, True))


def invite_url(application_id: int, guild_id: int | None = None) -> str:
    guild = discord.Object(guild_id) if guild_id else discord.utils.MISSING
    return discord.utils.oauth_url(
        application_id,
        permissions=permissions(),
        guild=guild,
        scopes=SCOPES,
        disable_guild_select=guild_id is not None,
    )


def invite_text(settings: Settings, guild_id: int | None = None) -> str:
    """What `python -m bot invite` prints."""
    app_id, source = resolve_application_id(settings)
    labels = ", ".join(PERMISSION_LABELS.values())
    lines = [
        "Open this link in a browser, pick your server and press Authorise:",
        "",
        invite_url(app_id, guild_id),
        "",
        f"Permissions: {labels} (integer {permissions().value}).",
        f"Scopes: {' '.join(SCOPES)}.",
    ]
    if source == "DISCORD_TOKEN":
        lines.append(
            f"Application id {app_id} was read from DISCORD_TOKEN. If Discord says 'Unknown application', "
            "set DISCORD_APPLICATION_ID (Developer Portal → General Information → Application ID)."
        )
    return "\n".join(lines)
