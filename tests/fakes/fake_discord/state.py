"""`World`: the fake's mutable state and the domain rules shared by REST handlers and the test API
(message creation/edit/delete with Discord's validation, mentions, permissions, CDN attachments)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import (
    CHANNEL_DM,
    Attachment,
    Channel,
    Guild,
    Message,
    RequestRecord,
    StoredCommand,
    User,
    walk_components,
)
from .util import (
    FLAG_IS_COMPONENTS_V2,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    MIB,
    PERMISSIONS,
    DiscordHTTPError,
    SnowflakeFactory,
    guess_content_type,
    image_size,
    invalid_form,
    unknown,
    utcnow,
)

if TYPE_CHECKING:
    from .interactions import Interaction

log = logging.getLogger("fake_discord")

MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass
class RateLimitRule:
    pattern: str  # fnmatch over "METHOD /path" (path after /api/v10); a bare path matches any method
    times: int
    retry_after: float
    is_global: bool = False
    scope: str = "user"
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        pat = self.pattern if " " in self.pattern else f"* {self.pattern}"
        return fnmatch.fnmatchcase(f"{method} {path}", pat)


@dataclass
class SlowAnswerRule:
    """Do what a matching request asks, then hold the answer back `seconds` (a late or lost response)."""

    pattern: str
    times: int
    seconds: float
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        pat = self.pattern if " " in self.pattern else f"* {self.pattern}"
        return fnmatch.fnmatchcase(f"{method} {path}", pat)


@dataclass
class Pulse:
    """Wakes waiters whenever the world changes (all changes happen on the fake's event loop)."""

    _event: asyncio.Event | None = None
    version: int = 0

    def fire(self) -> None:
        self.version += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, timeout: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), min(timeout, 0.05))


@dataclass
class World:
    base_url: str = ""
    token: str = ""
    snowflake: SnowflakeFactory = field(default_factory=SnowflakeFactory)
    users: dict[int, User] = field(default_factory=dict)
    guilds: dict[int, Guild] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    messages_by_id: dict[int, Message] = field(default_factory=dict)
    channel_messages: dict[int, list[Message]] = field(default_factory=dict)
    attachments: dict[int, Attachment] = field(default_factory=dict)
    dm_channels: dict[int, Channel] = field(default_factory=dict)
    commands: dict[int | None, dict[int, StoredCommand]] = field(default_factory=dict)
    command_syncs: list[tuple[int | None, float]] = field(default_factory=list)
    interactions: dict[int, Interaction] = field(default_factory=dict)
    interactions_by_token: dict[str, Interaction] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
    unknown_routes: list[RequestRecord] = field(default_factory=list)
    internal_errors: list[tuple[RequestRecord, BaseException]] = field(default_factory=list)
    rate_limits: list[RateLimitRule] = field(default_factory=list)
    slow_answers: list[SlowAnswerRule] = field(default_factory=list)
    # Discord dedupes a message whose nonce (with enforce_nonce) its author used "in the past few minutes".
    nonce_window: float = 120.0
    pulse: Pulse = field(default_factory=Pulse)
    cdn_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    cdn_link_lifetime: float = 24 * 3600.0
    ephemeral_link_lifetime: float = 3600.0
    dm_upload_limit: int = 10 * MIB
    bot_user: User | None = None
    application_id: int = 0
    # set by the gateway: called with ("MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE", message)
    message_listener: Callable[[str, Message], None] | None = None

    # Lookups -----------------------------------------------------------------------------------------
    def user(self, user_id: int | str) -> User:
        try:
            return self.users[int(user_id)]
        except (KeyError, ValueError):
            raise unknown("User") from None

    def channel(self, channel_id: int | str) -> Channel:
        try:
            channel = self.channels[int(channel_id)]
        except (KeyError, ValueError):
            raise unknown("Channel") from None
        if channel.deleted:
            raise unknown("Channel")
        return channel

    def guild(self, guild_id: int | str) -> Guild:
        try:
            return self.guilds[int(guild_id)]
        except (KeyError, ValueError):
            raise unknown("Guild") from None

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id else None

    def message(self, channel: Channel, message_id: int | str) -> Message:
        try:
            msg = self.messages_by_id[int(message_id)]
        except (KeyError, ValueError):
            raise unknown("Message") from None
        if msg.deleted or msg.channel_id != channel.id:
            raise unknown("Message")
        return msg

    def upload_limit(self, channel: Channel | None) -> int:
        guild = self.guild_of(channel) if channel else None
        return guild.upload_limit if guild else self.dm_upload_limit

    def bot_permissions(self, channel: Channel) -> int:
        guild = self.guild_of(channel)
        if guild is None:  # DM: the usual DM permissions
            return (
                PERMISSIONS["view_channel"]
                | PERMISSIONS["send_messages"]
                | PERMISSIONS["embed_links"]
                | PERMISSIONS["attach_files"]
                | PERMISSIONS["read_message_history"]
                | PERMISSIONS["add_reactions"]
            )
        assert self.bot_user is not None
        return guild.permissions_in(channel, self.bot_user.id)

    def require_bot_permissions(self, channel: Channel, *names: str) -> None:
        perms = self.bot_permissions(channel)
        if not perms & PERMISSIONS["view_channel"]:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        for name in names:
            if not perms & PERMISSIONS[name]:
                raise DiscordHTTPError(403, 50013, "Missing Permissions")

    def dm_channel_for(self, user: User) -> Channel:
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = Channel(id=self.snowflake(), name=None, type=CHANNEL_DM, recipients=[user])
            self.channels[channel.id] = channel
            self.channel_messages[channel.id] = []
            self.dm_channels[user.id] = channel
        return channel

    # CDN -------------------------------------------------------------------------------------------------
    def register_attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        channel_id: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        title: str | None = None,
    ) -> Attachment:
        size = image_size(data)
        lifetime = self.ephemeral_link_lifetime if ephemeral else self.cdn_link_lifetime
        att = Attachment(
            id=self.snowflake(),
            filename=_safe_filename(filename),
            data=data,
            content_type=content_type or guess_content_type(filename, data),
            width=size[0] if size else None,
            height=size[1] if size else None,
            description=description,
            ephemeral=ephemeral,
            channel_id=channel_id,
            expires_at=utcnow() + dt.timedelta(seconds=lifetime),
            title=title,
        )
        self.attachments[att.id] = att
        self.sign_attachment(att)
        return att

    def cdn_path(self, att: Attachment) -> str:
        folder = "ephemeral-attachments" if att.ephemeral else "attachments"
        return f"/{folder}/{att.channel_id or self.application_id}/{att.id}/{att.filename}"

    def sign_attachment(self, att: Attachment) -> None:
        """(Re)compute the signed url/proxy_url (needs base_url; refreshed when the server starts)."""
        path = self.cdn_path(att)
        expires = int((att.expires_at or utcnow()).timestamp())
        issued = int(utcnow().timestamp())
        ex, is_ = f"{expires:x}", f"{issued:x}"
        mac = hmac.new(self.cdn_secret, f"{path}|{ex}|{is_}".encode(), hashlib.sha256).hexdigest()
        query = f"?ex={ex}&is={is_}&hm={mac}&"
        att.url = f"{self.base_url}/cdn{path}{query}"
        att.proxy_url = f"{self.base_url}/media{path}{query}"

    def check_cdn_signature(self, path: str, ex: str, is_: str, mac: str) -> bool:
        expected = hmac.new(self.cdn_secret, f"{path}|{ex}|{is_}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return False
        try:
            return int(ex, 16) >= utcnow().timestamp()
        except ValueError:
            return False

    # Messages --------------------------------------------------------------------------------------------
    def create_message(
        self,
        channel: Channel,
        author: User,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        attachments: list[Attachment] | None = None,
        flags: int = 0,
        tts: bool = False,
        nonce: str | int | None = None,
        allowed_mentions: dict[str, Any] | None = None,
        message_reference: dict[str, Any] | None = None,
        sticker_ids: list[int] | None = None,
        poll: dict[str, Any] | None = None,
        webhook_id: int | None = None,
        application_id: int | None = None,
        interaction_metadata: dict[str, Any] | None = None,
        interaction_id: int | None = None,
        type_: int | None = None,
        via: str = "",
        validate: bool = True,
    ) -> Message:
        embeds = list(embeds or [])
        components = list(components or [])
        attachments = list(attachments or [])
        if validate:
            validate_message_body(content, embeds, components, flags, attachments, sticker_ids, poll)
        referenced: Message | None = None
        if message_reference:
            message_reference, referenced = self._resolve_reference(channel, message_reference)
        msg_type = type_
        if msg_type is None:
            msg_type = MESSAGE_REPLY if referenced is not None else MESSAGE_DEFAULT
        for att in attachments:
            if att.channel_id != channel.id:
                att.channel_id = channel.id
                self.sign_attachment(att)
        msg = Message(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            embeds=embeds,
            components=components,
            attachments=attachments,
            flags=flags,
            type=msg_type,
            tts=tts,
            nonce=nonce,
            allowed_mentions=allowed_mentions,
            message_reference=message_reference,
            referenced_message=referenced,
            webhook_id=webhook_id,
            application_id=application_id,
            interaction_metadata=interaction_metadata,
            interaction_id=interaction_id,
            sticker_ids=list(sticker_ids or []),
            poll=poll,
        )
        self._compute_mentions(msg)
        msg.record_revision(via)
        self.messages_by_id[msg.id] = msg
        self.channel_messages.setdefault(channel.id, []).append(msg)
        channel.last_message_id = msg.id
        self._emit("MESSAGE_CREATE", msg)
        return msg

    def edit_message(
        self, msg: Message, payload: dict[str, Any], new_files: dict[int, Attachment], via: str
    ) -> None:
        """Apply a PATCH body (content/embeds/components/flags/allowed_mentions/attachments) + uploads."""
        content = payload.get("content", msg.content)
        content = "" if content is None else str(content)
        if "embeds" in payload:
            embeds = list(payload["embeds"] or [])
        elif "embed" in payload:
            embeds = [payload["embed"]] if payload["embed"] else []
        else:
            embeds = msg.embeds
        components = list(payload["components"] or []) if "components" in payload else msg.components
        flags = msg.flags
        if "flags" in payload and payload["flags"] is not None:
            mutable = FLAG_SUPPRESS_EMBEDS | FLAG_IS_COMPONENTS_V2
            flags = (msg.flags & ~mutable) | (int(payload["flags"]) & mutable)
        if "attachments" in payload and payload["attachments"] is not None:
            by_id = {a.id: a for a in msg.attachments}
            new_by_index = dict(new_files)
            attachments: list[Attachment] = []
            for item in payload["attachments"]:
                raw_id = item.get("id")
                try:
                    key = int(raw_id)
                except (TypeError, ValueError):
                    raise invalid_form("attachments", "ATTACHMENT_NOT_FOUND", "Unknown attachment") from None
                if key in by_id:
                    attachments.append(by_id[key])
                elif key in new_by_index:
                    attachments.append(new_by_index.pop(key))
                else:
                    raise invalid_form(
                        "attachments", "ATTACHMENT_NOT_FOUND", f"Attachment {raw_id} not found"
                    )
            attachments.extend(new_by_index.values())
        else:
            attachments = msg.attachments + list(new_files.values())
        validate_message_body(content, embeds, components, flags, attachments, msg.sticker_ids, msg.poll)
        if msg.loading:
            flags &= ~(1 << 7)
        for att in attachments:
            if att.channel_id != msg.channel_id:
                att.channel_id = msg.channel_id
                self.sign_attachment(att)
        msg.content, msg.embeds, msg.components, msg.flags, msg.attachments = (
            content,
            embeds,
            components,
            flags,
            attachments,
        )
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        self._compute_mentions(msg)
        msg.edited_at = utcnow()
        msg.record_revision(via)
        self._emit("MESSAGE_UPDATE", msg)

    def delete_message(self, msg: Message) -> None:
        msg.deleted = True
        msg.deleted_at = utcnow()
        self._emit("MESSAGE_DELETE", msg)

    def _emit(self, event: str, msg: Message) -> None:
        self.pulse.fire()
        if self.message_listener is not None and not msg.ephemeral:
            self.message_listener(event, msg)

    def _resolve_reference(
        self, channel: Channel, ref: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, Message | None]:
        ref_type = int(ref.get("type", 0) or 0)
        target_channel_id = int(ref.get("channel_id") or channel.id)
        target: Message | None = None
        try:
            target = self.messages_by_id[int(ref["message_id"])]
            if target.deleted or target.channel_id != target_channel_id:
                target = None
        except (KeyError, TypeError, ValueError):
            target = None
        if target is None:
            if ref.get("fail_if_not_exists", True):
                raise invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return None, None
        stored = {
            "type": ref_type,
            "message_id": str(target.id),
            "channel_id": str(target.channel_id),
        }
        if target.guild_id:
            stored["guild_id"] = str(target.guild_id)
        return stored, target

    def _compute_mentions(self, msg: Message) -> None:
        """Who this message actually pings, per Discord's allowed_mentions rules."""
        am = msg.allowed_mentions
        if am is None:
            parse = {"users", "roles", "everyone"}
            users_allowed: set[str] = set()
            roles_allowed: set[str] = set()
            replied_user = True
        else:
            parse = set(am.get("parse") or [])
            users_allowed = {str(u) for u in am.get("users") or []}
            roles_allowed = {str(r) for r in am.get("roles") or []}
            replied_user = bool(am.get("replied_user", False))
        mentioned: list[User] = []
        for raw in _USER_MENTION.findall(msg.content):
            user = self.users.get(int(raw))
            if user is None or user in mentioned:
                continue
            if "users" in parse or raw in users_allowed:
                mentioned.append(user)
        ref = msg.referenced_message
        if ref is not None and replied_user and ref.author not in mentioned and msg.type == MESSAGE_REPLY:
            mentioned.append(ref.author)
        msg.mentions = mentioned
        msg.mention_roles = [
            int(r) for r in _ROLE_MENTION.findall(msg.content) if "roles" in parse or r in roles_allowed
        ]
        msg.mention_everyone = ("@everyone" in msg.content or "@here" in msg.content) and "everyone" in parse

    def message_with_nonce(self, channel: Channel, author: User, nonce: str | int) -> Message | None:
        """The message `author` created in `channel` with `nonce` within the nonce window, if any."""
        since = utcnow().timestamp() - self.nonce_window
        for msg in reversed(self.channel_messages.get(channel.id, [])):
            if msg.created_at.timestamp() < since:
                break
            if msg.author.id == author.id and msg.nonce is not None and str(msg.nonce) == str(nonce):
                return msg
        return None

    # Requests --------------------------------------------------------------------------------------------
    def take_rate_limit(self, method: str, path: str) -> RateLimitRule | None:
        for rule in self.rate_limits:
            if rule.hits < rule.times and rule.matches(method, path):
                rule.hits += 1
                return rule
        return None

    def take_slow_answer(self, method: str, path: str) -> SlowAnswerRule | None:
        for rule in self.slow_answers:
            if rule.hits < rule.times and rule.matches(method, path):
                rule.hits += 1
                return rule
        return None


def validate_message_body(
    content: str,
    embeds: list[dict[str, Any]],
    components: list[dict[str, Any]],
    flags: int,
    attachments: list[Attachment],
    sticker_ids: list[int] | None = None,
    poll: dict[str, Any] | None = None,
) -> None:
    """Discord's checks on a message body, with its 50035 / 50006 errors."""
    if len(content) > 2000:
        raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    v2 = bool(flags & FLAG_IS_COMPONENTS_V2)
    if v2 and (content or embeds):
        raise invalid_form(
            "content", "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used when using the IS_COMPONENTS_V2 flag",
        )  # fmt: skip
    _validate_embeds(embeds)
    _validate_components(components, v2)
    if not (content or embeds or components or attachments or sticker_ids or poll):
        raise DiscordHTTPError(400, 50006, "Cannot send an empty message")


def _validate_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > 10:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    limits = {"title": 256, "description": 4096}
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            raise invalid_form(
                f"embeds.{i}", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType"
            )
        for key, limit in limits.items():
            value = str(embed.get(key) or "")
            total += len(value)
            if len(value) > limit:
                raise invalid_form(
                    f"embeds.{i}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid_form(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                value = str(fld.get(key) or "")
                total += len(value)
                if not value:
                    raise invalid_form(
                        f"embeds.{i}.fields.{j}.{key}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
                if len(value) > limit:
                    raise invalid_form(
                        f"embeds.{i}.fields.{j}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
        footer = str((embed.get("footer") or {}).get("text") or "")
        author = str((embed.get("author") or {}).get("name") or "")
        if len(footer) > 2048:
            raise invalid_form(
                f"embeds.{i}.footer.text", "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length."
            )
        if len(author) > 256:
            raise invalid_form(
                f"embeds.{i}.author.name", "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."
            )
        total += len(footer) + len(author)
    if total > 6000:
        raise invalid_form("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_components(components: list[dict[str, Any]], v2: bool) -> None:
    if not v2:
        if len(components) > 5:
            raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for i, row in enumerate(components):
            if row.get("type") != 1:
                raise invalid_form(
                    f"components.{i}",
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,); use the IS_COMPONENTS_V2 flag for others.',
                )
            if not 1 <= len(row.get("components") or []) <= 5:
                raise invalid_form(
                    f"components.{i}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                )
    elif len(walk_components(components)) > 40:
        raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in total.")
    seen: set[str] = set()
    for comp in walk_components(components):
        custom_id = comp.get("custom_id")
        if custom_id is not None:
            if len(str(custom_id)) > 100:
                raise invalid_form(
                    "components", "BASE_TYPE_MAX_LENGTH", "custom_id: Must be 100 or fewer in length."
                )
            if custom_id in seen:
                raise invalid_form(
                    "components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
                )
            seen.add(custom_id)
        if comp.get("type") == 2 and len(str(comp.get("label") or "")) > 80:
            raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "label: Must be 80 or fewer in length.")


def allowed_message_flags(flags: int) -> int:
    """Flags a bot may set when creating a channel message."""
    return flags & (FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2)


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "unknown"


def fake_token(bot_id: int) -> str:
    head = base64.urlsafe_b64encode(str(bot_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(27)}"
