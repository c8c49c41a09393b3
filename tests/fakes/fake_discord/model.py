"""The fake's world: users, guilds, roles, members, channels, messages (with edit history), attachments,
recorded requests. Plain dataclasses; tests read them directly (ids are ints here, strings on the wire)."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .util import (
    ALL_PERMISSIONS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    PERMISSIONS,
    upload_limit_for_tier,
    utcnow,
)

CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_VOICE = 2
CHANNEL_CATEGORY = 4
CHANNEL_NEWS = 5
CHANNEL_PUBLIC_THREAD = 11


@dataclass(eq=False)
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    discriminator: str = "0"
    avatar: str | None = None
    locale: str = "en-US"
    accepts_dms: bool = True

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def __repr__(self) -> str:
        return f"<User {self.username} {self.id}>"


@dataclass(eq=False)
class Role:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    managed: bool = False
    mentionable: bool = False
    tags: dict[str, Any] | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def __repr__(self) -> str:
        return f"<Role {self.name} {self.id}>"


@dataclass(eq=False)
class Member:
    user: User
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: dt.datetime = field(default_factory=utcnow)

    @property
    def id(self) -> int:
        return self.user.id


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0


@dataclass(eq=False)
class Channel:
    id: int
    name: str | None
    type: int = CHANNEL_TEXT
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    nsfw: bool = False
    parent_id: int | None = None
    rate_limit_per_user: int = 0
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    recipients: list[User] = field(default_factory=list)
    deleted: bool = False
    last_message_id: int | None = None

    @property
    def is_dm(self) -> bool:
        return self.type == CHANNEL_DM

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def __repr__(self) -> str:
        return f"<Channel #{self.name} {self.id}>"


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    locale: str = "en-US"
    features: list[str] = field(default_factory=list)
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=utcnow)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    @property
    def upload_limit(self) -> int:
        return upload_limit_for_tier(self.premium_tier)

    def channel_named(self, name: str) -> Channel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(name)

    def role_named(self, name: str) -> Role:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(name)

    def base_permissions(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        perms = self.everyone.permissions
        if member is not None:
            for role_id in member.role_ids:
                role = self.roles.get(role_id)
                if role is not None:
                    perms |= role.permissions
        if perms & PERMISSIONS["administrator"]:
            return ALL_PERMISSIONS
        return perms

    def permissions_in(self, channel: Channel | None, user_id: int) -> int:
        """Discord's permission algorithm: base, then @everyone / role / member overwrites."""
        perms = self.base_permissions(user_id)
        if channel is None or perms == ALL_PERMISSIONS:
            return perms
        member = self.members.get(user_id)
        ow = channel.overwrites.get(self.id)
        if ow is not None:
            perms = (perms & ~ow.deny) | ow.allow
        allow = deny = 0
        for role_id in member.role_ids if member else []:
            ow = channel.overwrites.get(role_id)
            if ow is not None and ow.type == 0:
                allow |= ow.allow
                deny |= ow.deny
        perms = (perms & ~deny) | allow
        ow = channel.overwrites.get(user_id)
        if ow is not None and ow.type == 1:
            perms = (perms & ~ow.deny) | ow.allow
        if not perms & PERMISSIONS["view_channel"]:
            return 0
        return perms

    def __repr__(self) -> str:
        return f"<Guild {self.name} {self.id}>"


@dataclass(eq=False)
class Attachment:
    """A file on the fake CDN. `url` / `proxy_url` are filled in when registered with the CDN."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False
    channel_id: int | None = None
    url: str = ""
    proxy_url: str = ""
    expires_at: dt.datetime | None = None
    title: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<Attachment {self.filename} {self.size}B {self.content_type}>"


@dataclass
class MessageRevision:
    """One state of a message: its creation, then one per edit."""

    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[Attachment]
    flags: int
    at: dt.datetime
    via: str  # the request that produced it, e.g. "PATCH /webhooks/{app}/{token}/messages/@original"


@dataclass(eq=False)
class Message:
    id: int
    channel_id: int
    author: User
    guild_id: int | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    nonce: str | int | None = None
    allowed_mentions: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    referenced_message: Message | None = None
    mentions: list[User] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    interaction_id: int | None = None
    poll: dict[str, Any] | None = None
    sticker_ids: list[int] = field(default_factory=list)
    created_at: dt.datetime = field(default_factory=utcnow)
    edited_at: dt.datetime | None = None
    deleted: bool = False
    deleted_at: dt.datetime | None = None
    pinned: bool = False
    reactions: dict[str, set[int]] = field(default_factory=dict)
    history: list[MessageRevision] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def jump_url(self) -> str:
        return f"https://discord.com/channels/{self.guild_id or '@me'}/{self.channel_id}/{self.id}"

    @property
    def text(self) -> str:
        """Content plus embed titles/descriptions/fields and Components-v2 text, for easy assertions."""
        parts = [self.content]
        for embed in self.embeds:
            parts.extend(str(embed.get(k, "")) for k in ("title", "description"))
            for fld in embed.get("fields", []):
                parts.extend((str(fld.get("name", "")), str(fld.get("value", ""))))
            if "footer" in embed:
                parts.append(str(embed["footer"].get("text", "")))
        parts.extend(_component_texts(self.components))
        return "\n".join(p for p in parts if p)

    def record_revision(self, via: str) -> None:
        self.history.append(
            MessageRevision(
                content=self.content,
                embeds=copy.deepcopy(self.embeds),
                components=copy.deepcopy(self.components),
                attachments=list(self.attachments),
                flags=self.flags,
                at=self.edited_at or self.created_at,
                via=via,
            )
        )

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    def __repr__(self) -> str:
        return f"<Message {self.id} by {self.author.username} in {self.channel_id}: {self.content[:40]!r}>"


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component, depth-first, through action rows, containers, sections and labels."""
    out: list[dict[str, Any]] = []
    for comp in components:
        out.append(comp)
        for key in ("components",):
            if isinstance(comp.get(key), list):
                out.extend(walk_components(comp[key]))
        for key in ("component", "accessory"):
            if isinstance(comp.get(key), dict):
                out.extend(walk_components([comp[key]]))
    return out


def _component_texts(components: list[dict[str, Any]]) -> list[str]:
    texts = []
    for comp in walk_components(components):
        if comp.get("type") == 10 and comp.get("content"):  # text display
            texts.append(str(comp["content"]))
        elif comp.get("type") == 2 and comp.get("label"):  # button label
            texts.append(str(comp["label"]))
    return texts


@dataclass
class FileInfo:
    field: str
    filename: str
    size: int
    content_type: str | None


@dataclass
class RequestRecord:
    """One HTTP request the bot made to the fake."""

    method: str
    path: str  # after /api/v10, e.g. /channels/123/messages
    route: str  # template, e.g. /channels/{channel_id}/messages
    query: dict[str, str]
    json: Any
    files: list[FileInfo]
    at: float  # time.monotonic() when it arrived
    wall: dt.datetime
    status: int = 0
    error_code: int | None = None
    elapsed: float = 0.0
    response: Any = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def __repr__(self) -> str:
        extra = f" files={[f.filename for f in self.files]}" if self.files else ""
        code = f"/{self.error_code}" if self.error_code else ""
        return f"<{self.method} {self.path} -> {self.status}{code}{extra}>"


@dataclass
class CallbackRecord:
    """An interaction callback (initial response) as received."""

    type: int
    data: dict[str, Any]
    files: list[FileInfo]
    at: float
    status: int = 0
    error_code: int | None = None

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")

    @property
    def custom_id(self) -> str | None:
        return self.data.get("custom_id")


@dataclass(repr=False)
class StoredCommand:
    id: int
    application_id: int
    payload: dict[str, Any]
    guild_id: int | None = None
    version: int = 0

    @property
    def name(self) -> str:
        return self.payload["name"]

    @property
    def type(self) -> int:
        return int(self.payload.get("type", 1))

    def __repr__(self) -> str:
        scope = f" guild={self.guild_id}" if self.guild_id else ""
        return f"<StoredCommand {self.name!r} type={self.type} id={self.id}{scope}>"

    def option(self, *path: str) -> dict[str, Any]:
        options = self.payload.get("options", [])
        found: dict[str, Any] = {}
        for name in path:
            found = next(o for o in options if o["name"] == name)
            options = found.get("options", [])
        return found
