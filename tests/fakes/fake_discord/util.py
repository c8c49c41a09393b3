"""Small shared helpers: snowflakes, timestamps, permission bits, Discord-style errors, image probing."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import mimetypes
import threading
import time
from collections.abc import Iterable
from typing import Any

from PIL import Image

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits, named as discord.py names them (discord.Permissions.VALID_FLAGS) -------------------------
PERMISSIONS: dict[str, int] = {
    "create_instant_invite": 1 << 0,
    "kick_members": 1 << 1,
    "ban_members": 1 << 2,
    "administrator": 1 << 3,
    "manage_channels": 1 << 4,
    "manage_guild": 1 << 5,
    "add_reactions": 1 << 6,
    "view_audit_log": 1 << 7,
    "priority_speaker": 1 << 8,
    "stream": 1 << 9,
    "view_channel": 1 << 10,
    "read_messages": 1 << 10,
    "send_messages": 1 << 11,
    "send_tts_messages": 1 << 12,
    "manage_messages": 1 << 13,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "mention_everyone": 1 << 17,
    "use_external_emojis": 1 << 18,
    "view_guild_insights": 1 << 19,
    "connect": 1 << 20,
    "speak": 1 << 21,
    "mute_members": 1 << 22,
    "deafen_members": 1 << 23,
    "move_members": 1 << 24,
    "use_voice_activation": 1 << 25,
    "change_nickname": 1 << 26,
    "manage_nicknames": 1 << 27,
    "manage_roles": 1 << 28,
    "manage_webhooks": 1 << 29,
    "manage_expressions": 1 << 30,
    "use_application_commands": 1 << 31,
    "request_to_speak": 1 << 32,
    "manage_events": 1 << 33,
    "manage_threads": 1 << 34,
    "create_public_threads": 1 << 35,
    "create_private_threads": 1 << 36,
    "use_external_stickers": 1 << 37,
    "send_messages_in_threads": 1 << 38,
    "use_embedded_activities": 1 << 39,
    "moderate_members": 1 << 40,
    "view_creator_monetization_analytics": 1 << 41,
    "use_soundboard": 1 << 42,
    "create_expressions": 1 << 43,
    "create_events": 1 << 44,
    "use_external_sounds": 1 << 45,
    "send_voice_messages": 1 << 46,
    "send_polls": 1 << 49,
    "use_external_apps": 1 << 50,
    "pin_messages": 1 << 51,
}
ALL_PERMISSIONS = 0
for _bit in PERMISSIONS.values():
    ALL_PERMISSIONS |= _bit

# What @everyone gets in a new server (Discord's default, 0x640 ... as the client creates it).
DEFAULT_EVERYONE_PERMISSIONS = 0
for _name in (
    "create_instant_invite", "add_reactions", "stream", "view_channel", "send_messages", "embed_links",
    "attach_files", "read_message_history", "mention_everyone", "use_external_emojis", "connect", "speak",
    "use_voice_activation", "change_nickname", "use_application_commands", "request_to_speak",
    "create_public_threads", "create_private_threads", "use_external_stickers", "send_messages_in_threads",
    "use_embedded_activities", "use_soundboard", "use_external_sounds", "send_voice_messages", "send_polls",
    "use_external_apps",
):  # fmt: skip
    DEFAULT_EVERYONE_PERMISSIONS |= PERMISSIONS[_name]

# What a bot invited with "minimum permissions" usually gets on its managed role.
DEFAULT_BOT_PERMISSIONS = 0
for _name in (
    "view_channel", "send_messages", "embed_links", "attach_files", "read_message_history",
    "use_application_commands", "send_messages_in_threads", "add_reactions",
):  # fmt: skip
    DEFAULT_BOT_PERMISSIONS |= PERMISSIONS[_name]


def permission_bits(*names_or_values: str | int) -> int:
    """`permission_bits("send_messages", "attach_files")` -> int. Ints pass through."""
    value = 0
    for item in names_or_values:
        if isinstance(item, int):
            value |= item
            continue
        try:
            value |= PERMISSIONS[item]
        except KeyError:
            raise ValueError(f"unknown permission name {item!r}") from None
    return value


# Gateway intents ------------------------------------------------------------------------------------------
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = {
    "members": INTENT_GUILD_MEMBERS,
    "presences": INTENT_GUILD_PRESENCES,
    "message_content": INTENT_MESSAGE_CONTENT,
}

# Application flags (GET /applications/@me). A bot in under 100 servers turns privileged intents on with the
# Developer Portal's toggles, which sets the *_LIMITED flags; verified bots get the unlimited ones instead.
APP_GATEWAY_PRESENCE = 1 << 12
APP_GATEWAY_PRESENCE_LIMITED = 1 << 13
APP_GATEWAY_GUILD_MEMBERS = 1 << 14
APP_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_GATEWAY_MESSAGE_CONTENT = 1 << 18
APP_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
APP_APPLICATION_COMMAND_BADGE = 1 << 23
PORTAL_TOGGLE_FLAGS = {
    "members": APP_GATEWAY_GUILD_MEMBERS_LIMITED,
    "presences": APP_GATEWAY_PRESENCE_LIMITED,
    "message_content": APP_GATEWAY_MESSAGE_CONTENT_LIMITED,
}


def application_flags(enabled_intents: Iterable[str]) -> int:
    """The application's `flags` for the privileged intents toggled on in the portal."""
    flags = APP_APPLICATION_COMMAND_BADGE
    for name in enabled_intents:
        flags |= PORTAL_TOGGLE_FLAGS[name]
    return flags


# Message flags ---------------------------------------------------------------------------------------------
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

MIB = 1024 * 1024


def upload_limit_for_tier(premium_tier: int) -> int:
    """Per-file upload limit for bots/webhooks in a guild of this boost tier."""
    if premium_tier >= 3:
        return 100 * MIB
    if premium_tier == 2:
        return 50 * MIB
    return 10 * MIB


# Snowflakes and time ---------------------------------------------------------------------------------------
class SnowflakeFactory:
    """Monotonic, thread-safe snowflakes whose timestamp part is the real current time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            self._last = self._next()
            return self._last

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """A new snowflake that Discord routes to shard `shard_id` of `shard_count` (a few ms ahead)."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not one of {shard_count} shard(s)")
        with self._lock:
            value = self._next()
            while (value >> 22) % shard_count != shard_id:  # the shard is chosen by the timestamp part
                value += 1 << 22
            self._last = value
            return value

    def _next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
        return value if value > self._last else self._last + 1


def iso(ts: dt.datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(dt.UTC).isoformat(timespec="microseconds")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Errors ----------------------------------------------------------------------------------------------------
class DiscordHTTPError(Exception):
    """Raised by route handlers; the middleware turns it into Discord's JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def invalid_form(field_path: str, error_code: str, message: str) -> DiscordHTTPError:
    """400 / 50035 Invalid Form Body with Discord's nested `errors` shape (`a.0.b` -> nested dicts)."""
    tree: dict[str, Any] = {"_errors": [{"code": error_code, "message": message}]}
    for part in reversed(field_path.split(".")):
        tree = {part: tree}
    return DiscordHTTPError(400, 50035, "Invalid Form Body", errors=tree)


def unknown(kind: str) -> DiscordHTTPError:
    codes = {
        "Channel": 10003,
        "Guild": 10004,
        "Interaction": 10062,
        "Member": 10007,
        "Message": 10008,
        "User": 10013,
        "Webhook": 10015,
        "Application": 10002,
        "Application Command": 10063,
    }
    return DiscordHTTPError(404, codes[kind], f"Unknown {kind}")


MISSING_ACCESS = (403, 50001, "Missing Access")
MISSING_PERMISSIONS = (403, 50013, "Missing Permissions")


# Files -----------------------------------------------------------------------------------------------------
def guess_content_type(filename: str, data: bytes | None = None) -> str | None:
    if data is not None:
        head = data[:16]
        if head.startswith(b"\x89PNG"):
            return "image/png"
        if head.startswith(b"\xff\xd8\xff"):
            return "image/jpeg"
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return "image/webp"
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return "image/gif"
        if head[4:8] == b"ftyp":
            return "video/mp4"
    guessed, _ = mimetypes.guess_type(filename)
    return guessed


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) for image bytes Pillow can read, else None (videos get no size here)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None
