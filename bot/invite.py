"""The invite link: exactly the permissions the bot uses, the two scopes, and the application id (offline).

The bot reads the channels it answers in, posts job cards and results as embeds with the video attached, and
replies to messages (which needs Read Message History). Nothing more: no external emojis, no reactions, no
management permissions. Moderator commands check the *member's* permissions, not the bot's.
"""

from __future__ import annotations

import base64
import binascii

import discord

from .settings import HELP, ConfigError, Settings

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


def application_id_from_token(token: str) -> int | None:
    """A bot token's first segment is the base64 of the bot user's id (the application's id for any
    application created since 2019). None when the token does not look like a bot token."""
    head = token.strip().split(".")[0]
    if not head or len(head) > 40:
        return None
    padded = head.replace("-", "+").replace("_", "/") + "=" * (-len(head) % 4)
    try:
        text = base64.b64decode(padded, validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 15 <= len(text) <= 21 else None


def token_problem(token: str) -> str | None:
    """A DISCORD_TOKEN that is certainly wrong (a placeholder, the client secret, a 'Bot ' prefix) is found
    offline, before Discord is contacted. None if it may be right: Discord has the last word.

    A bot token has three parts separated by dots, the first the bot's id in base64; anything else is not
    one (Discord would refuse it after a round trip)."""
    token = token.strip()
    if any(c.isspace() for c in token) or token.lower().startswith("bot "):
        return (
            "DISCORD_TOKEN must be the bare token, without spaces or a 'Bot ' prefix. "
            + HELP["DISCORD_TOKEN"]
        )
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or application_id_from_token(token) is None:
        return (
            "DISCORD_TOKEN does not look like a bot token (a bot token has three parts separated by dots, "
            "the first one your bot's id). Copy it from the Bot page, not the client secret, the public key "
            "or the example text. " + HELP["DISCORD_TOKEN"]
        )
    return None


def resolve_application_id(settings: Settings) -> tuple[int, str]:
    """(application id, where it came from). DISCORD_APPLICATION_ID wins; else it is read from the token."""
    if settings.discord_application_id is not None:
        return settings.discord_application_id, "DISCORD_APPLICATION_ID"
    if settings.discord_token is not None:
        token = settings.discord_token.get_secret_value()
        app_id = application_id_from_token(token)
        if app_id is not None:
            return app_id, "DISCORD_TOKEN"
        problem = token_problem(token) or "DISCORD_TOKEN does not hold your application's id."
        raise ConfigError(
            f"{problem} Fix DISCORD_TOKEN, or set DISCORD_APPLICATION_ID to make the invite link without it. "
            + HELP["DISCORD_APPLICATION_ID"]
        )
    raise ConfigError(
        "Set DISCORD_APPLICATION_ID (or DISCORD_TOKEN) to make the invite link. "
        + HELP["DISCORD_APPLICATION_ID"]
    )


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
