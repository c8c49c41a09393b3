"""What a Discord bot token says offline: whether it can be one, and the application id it carries.

Pure string work, so the start-up checks (`bot/core/preflight.py`) and the setup wizard can judge a token
without loading discord.py; the invite link itself is made in `bot/discord_side/invite.py`.
"""

from __future__ import annotations

import base64
import binascii

from .settings import HELP, ConfigError, Settings


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
