"""Builders for the JSON objects Discord sends (ids as strings, the fields discord.py and bots read)."""

from __future__ import annotations

from typing import Any

from .model import CHANNEL_DM, Attachment, Channel, Guild, Member, Message, Role, User
from .state import World
from .util import INTENT_MESSAGE_CONTENT, iso


def user(u: User) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": u.discriminator,
        "global_name": u.global_name,
        "avatar": u.avatar,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "banner_color": None,
        "clan": None,
    }
    if u.bot:
        data["bot"] = True
    return data


def client_user(u: User) -> dict[str, Any]:
    data = user(u)
    data.update(
        {
            "mfa_enabled": True,
            "locale": "en-US",
            "verified": True,
            "email": None,
            "bio": "",
            "premium_type": 0,
        }
    )
    return data


def role(r: Role) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "description": None,
        "permissions": str(r.permissions),
        "position": r.position,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "managed": r.managed,
        "mentionable": r.mentionable,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }
    if r.tags is not None:
        data["tags"] = r.tags
    return data


def member(m: Member, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [str(r) for r in m.role_ids],
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "avatar_decoration_data": None,
        "collectibles": None,
    }
    if with_user:
        data["user"] = user(m.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def channel(c: Channel, world: World | None = None) -> dict[str, Any]:
    if c.type == CHANNEL_DM:
        return {
            "id": str(c.id),
            "type": CHANNEL_DM,
            "last_message_id": str(c.last_message_id) if c.last_message_id else None,
            "flags": 0,
            "recipients": [user(u) for u in c.recipients],
        }
    data: dict[str, Any] = {
        "id": str(c.id),
        "type": c.type,
        "guild_id": str(c.guild_id),
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [
            {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
            for o in c.overwrites.values()
        ],
        "parent_id": str(c.parent_id) if c.parent_id else None,
        "nsfw": c.nsfw,
        "flags": 0,
    }
    if c.type in (0, 5):
        data.update(
            {
                "topic": c.topic,
                "last_message_id": str(c.last_message_id) if c.last_message_id else None,
                "rate_limit_per_user": c.rate_limit_per_user,
                "last_pin_timestamp": None,
                "default_thread_rate_limit_per_user": 0,
            }
        )
    return data


def guild_rest(g: Guild) -> dict[str, Any]:
    """GET /guilds/{id} shape."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "region": "deprecated",
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": list(g.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "vanity_url_code": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(g.premium_tier, 14),
        "premium_progress_bar_enabled": False,
        "preferred_locale": g.locale,
        "nsfw_level": 0,
        "nsfw": False,
        "incidents_data": None,
        "hub_type": None,
        "latest_onboarding_question_id": None,
        "home_header": None,
    }


def guild_create(g: Guild) -> dict[str, Any]:
    """GUILD_CREATE (gateway) shape: the REST object plus channels, members, counts..."""
    data = guild_rest(g)
    live_channels = [c for c in g.channels.values() if not c.deleted]
    data.update(
        {
            "joined_at": iso(g.created_at),
            "large": len(g.members) > 250,
            "unavailable": False,
            "member_count": len(g.members),
            "voice_states": [],
            "members": [member(m) for m in g.members.values()],
            "channels": [channel(c) for c in live_channels],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "lazy": True,
            "application_command_counts": {},
            "version": 0,
        }
    )
    return data


def attachment(a: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(a.id),
        "filename": a.filename,
        "size": a.size,
        "url": a.url,
        "proxy_url": a.proxy_url,
        "content_type": a.content_type,
        "content_scan_version": 0,
    }
    if a.width is not None and a.height is not None:
        data["width"] = a.width
        data["height"] = a.height
        data["placeholder_version"] = 1
    if a.description is not None:
        data["description"] = a.description
    if a.title is not None:
        data["title"] = a.title
    if a.ephemeral:
        data["ephemeral"] = True
    return data


def message(
    world: World,
    m: Message,
    *,
    gateway: bool = False,
    intents: int | None = None,
    depth: int = 0,
) -> dict[str, Any]:
    """A message object. `gateway=True` adds guild_id/member as in MESSAGE_CREATE; with `intents`
    given, content fields are emptied as Discord does for apps without the message-content intent."""
    data: dict[str, Any] = {
        "type": m.type,
        "channel_id": str(m.channel_id),
        "content": m.content,
        "attachments": [attachment(a) for a in m.attachments],
        "embeds": list(m.embeds),
        "timestamp": iso(m.created_at),
        "edited_timestamp": iso(m.edited_at),
        "flags": m.flags,
        "components": list(m.components),
        "id": str(m.id),
        "author": user(m.author),
        "mentions": [user(u) for u in m.mentions],
        "mention_roles": [str(r) for r in m.mention_roles],
        "mention_everyone": m.mention_everyone,
        "pinned": m.pinned,
        "tts": m.tts,
    }
    if m.nonce is not None and depth == 0:
        data["nonce"] = m.nonce
    if m.webhook_id is not None:
        data["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        data["application_id"] = str(m.application_id)
    if m.interaction_metadata is not None:
        data["interaction_metadata"] = m.interaction_metadata
        meta = m.interaction_metadata
        if meta.get("type") == 2 and "name" in meta:
            data["interaction"] = {
                "id": meta["id"],
                "type": meta["type"],
                "name": meta["name"],
                "user": meta["user"],
            }
    if m.poll is not None:
        data["poll"] = m.poll
    if m.reactions:
        data["reactions"] = [
            {
                "emoji": {"id": None, "name": emoji},
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "burst_colors": [],
                "me": bool(world.bot_user and world.bot_user.id in users),
                "me_burst": False,
                "burst_me": False,
                "burst_count": 0,
            }
            for emoji, users in m.reactions.items()
            if users
        ]
    if m.message_reference is not None:
        data["message_reference"] = m.message_reference
        if depth == 0:
            ref = m.referenced_message
            data["referenced_message"] = (
                None if ref is None or ref.deleted else message(world, ref, intents=intents, depth=1)
            )
    if gateway and depth == 0 and m.guild_id:
        data["guild_id"] = str(m.guild_id)
        guild = world.guilds.get(m.guild_id)
        mem = guild.members.get(m.author.id) if guild else None
        if mem is not None and m.webhook_id is None:
            data["member"] = member(mem, with_user=False)
        data["mentions"] = [_mention_with_member(world, m.guild_id, u) for u in m.mentions]
    if intents is not None and not intents & INTENT_MESSAGE_CONTENT and not _content_exempt(world, m):
        data.update({"content": "", "embeds": [], "attachments": [], "components": []})
        data.pop("poll", None)
    return data


def _mention_with_member(world: World, guild_id: int, u: User) -> dict[str, Any]:
    data = user(u)
    guild = world.guilds.get(guild_id)
    mem = guild.members.get(u.id) if guild else None
    if mem is not None:
        data["member"] = member(mem, with_user=False)
    return data


def _content_exempt(world: World, m: Message) -> bool:
    bot = world.bot_user
    channel = world.channels.get(m.channel_id)
    return bool(
        (channel is not None and channel.type == CHANNEL_DM)
        or (bot is not None and (m.author.id == bot.id or any(u.id == bot.id for u in m.mentions)))
    )


def application(world: World, owner: User, *, name: str, flags: int) -> dict[str, Any]:
    assert world.bot_user is not None
    return {
        "id": str(world.application_id),
        "name": name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": flags,
        "owner": user(owner),
        "team": None,
        "bot": user(world.bot_user),
        "guild_id": None,
        "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
        "integration_types_config": {"0": {}},
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "redirect_uris": [],
        "tags": [],
        "approximate_guild_count": len(world.guilds),
        "approximate_user_install_count": 0,
        "event_webhooks_url": None,
        "event_webhooks_status": 1,
        "event_webhooks_types": [],
        "rpc_origins": [],
        "is_monetized": False,
        "is_verified": False,
        "is_discoverable": False,
        "storefront_available": False,
        "explicit_content_filter": 0,
    }
