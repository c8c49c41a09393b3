"""`FakeDiscord`: the test-facing API over the world, the REST routes and the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from ..server import LoopbackServer
from . import commands as cmds
from . import payloads
from .gateway import Gateway, shard_of
from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    base_payload,
    modal_submit_components,
)
from .model import (
    CHANNEL_TEXT,
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Overwrite,
    RequestRecord,
    Role,
    StoredCommand,
    User,
    walk_components,
)
from .rest import RestApi
from .state import RateLimitRule, SlowAnswerRule, World, fake_token
from .sync import on_loop, waitable
from .util import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    INTENT_MESSAGE_CONTENT,
    PERMISSIONS,
    PRIVILEGED_INTENTS,
    application_flags,
    permission_bits,
    utcnow,
)

T = TypeVar("T")
PATCH_DIR = Path(__file__).resolve().parent.parent / "discord_patch"
FileSpec = tuple[str, bytes] | tuple[str, bytes, str | None] | Attachment


class FakeDiscord:
    """A loopback Discord: REST (/api/v10), gateway websocket (/gateway) and CDN (/cdn, /media).

    Use ``async with FakeDiscord() as fake`` (same loop as the test; `wait_*` are awaited) or
    ``with FakeDiscord().threaded() as fake`` (own thread; `wait_*` block). Every other method is a plain
    call that works from either side.
    """

    def __init__(
        self,
        *,
        response_window: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval: int = 41_250,
        privileged_intents: Iterable[str] = (),
        enforce_message_content_intent: bool = True,
        app_name: str = "Hailuo Bot",
        guild_name: str = "Test Server",
        premium_tier: int = 0,
        max_guilds_per_shard: int = 2500,
    ) -> None:
        self.response_window = response_window
        self.token_lifetime = token_lifetime
        self.heartbeat_interval = heartbeat_interval
        self.privileged_intents = set(privileged_intents)  # toggled on in the "Developer Portal"
        unknown = self.privileged_intents - set(PRIVILEGED_INTENTS)
        if unknown:
            raise ValueError(
                f"unknown privileged intent(s) {sorted(unknown)}; use {sorted(PRIVILEGED_INTENTS)}"
            )
        self.enforce_message_content_intent = enforce_message_content_intent
        self.app_name = app_name
        # A session carrying more guilds than this is closed with 4011 "Sharding required", as on Discord.
        self.max_guilds_per_shard = max_guilds_per_shard
        self.gateway_compress = True  # honour compress=zlib-stream (False: plain text frames regardless)
        self._background: asyncio.Task[None] | None = None
        self.world = World()
        self.gateway = Gateway(self)
        self.server: LoopbackServer | None = None
        self._threaded = False
        w = self.world
        self.bot_user = User(
            id=w.snowflake(),
            username=app_name.lower().replace(" ", "-"),
            global_name=None,
            bot=True,
            discriminator="4821",
        )
        w.users[self.bot_user.id] = self.bot_user
        w.bot_user = self.bot_user
        w.application_id = self.bot_user.id
        self.token = fake_token(self.bot_user.id)
        w.token = self.token
        w.message_listener = self._on_message_event
        self.owner = self.add_user("owner", global_name="Server Owner")
        self.guild = self.add_guild(guild_name, owner=self.owner, premium_tier=premium_tier)
        self.channel = self.guild.channel_named("general")
        self.moderator_role = self.add_role(
            self.guild, "Moderator", permissions=("manage_guild", "manage_messages")
        )
        self.member = self.add_member(self.guild, "alice", global_name="Alice").user
        self.moderator = self.add_member(
            self.guild, "mod", global_name="Mod", roles=[self.moderator_role]
        ).user

    # Lifecycle ---------------------------------------------------------------------------------------------
    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def url(self) -> str:
        assert self.server is not None, "start the fake first"
        return self.server.url

    @property
    def api_url(self) -> str:
        return self.url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    def _fake_loop(self) -> asyncio.AbstractEventLoop | None:
        return self.server.loop if self.server is not None else None

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        RestApi(self).install(app)
        app.on_shutdown.append(lambda _app: self.gateway.close_all())
        return app

    def _after_start(self) -> None:
        self.world.base_url = self.url
        for att in self.world.attachments.values():
            self.world.sign_attachment(att)

    async def __aenter__(self) -> FakeDiscord:
        self.server = LoopbackServer(self._make_app())
        await self.server.start()
        self._after_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.gateway.close_all()
        await self.server.stop()

    @contextlib.contextmanager
    def threaded(self) -> Iterator[FakeDiscord]:
        """Run the fake in its own thread (for a bot subprocess); `wait_*` methods then block."""
        self.server = LoopbackServer(self._make_app())
        self.server.start_in_thread()
        self._threaded = True
        self._after_start()
        try:
            yield self
        finally:
            with contextlib.suppress(Exception):
                self.server.call(self.gateway.close_all)
            self.server.stop_thread()

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a bot subprocess: the patch on PYTHONPATH, the fake's URL, the bot token, and the
        fake's CDN as the only place images may come from (Discord's media hosts, for the bot)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PATCH_DIR), env.get("PYTHONPATH", "")) if p)
        env["HAILUO_FAKE_DISCORD_URL"] = self.url
        env["DISCORD_TOKEN"] = self.token
        env["IMAGE_ORIGINS"] = self.url
        env.update(extra)
        return env

    # Building the world ------------------------------------------------------------------------------------
    @on_loop
    def add_user(
        self, username: str, *, global_name: str | None = None, bot: bool = False, locale: str = "en-US"
    ) -> User:
        user = User(
            id=self.world.snowflake(), username=username, global_name=global_name, bot=bot, locale=locale
        )
        self.world.users[user.id] = user
        return user

    @on_loop
    def add_guild(
        self,
        name: str,
        *,
        owner: User | None = None,
        premium_tier: int = 0,
        channels: Iterable[str] = ("general",),
        locale: str = "en-US",
        bot_permissions: Iterable[str] | int = DEFAULT_BOT_PERMISSIONS,
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """A guild the bot is in: @everyone, the bot's managed role, the owner and the bot as members.

        `shard=(id, count)` picks an id that lands on that shard when the bot runs `count` shards."""
        w = self.world
        owner = owner or self.owner
        guild_id = w.snowflake() if shard is None else w.snowflake.on_shard(*shard)
        guild = Guild(id=guild_id, name=name, owner_id=owner.id, premium_tier=premium_tier, locale=locale)
        guild.roles[guild.id] = Role(id=guild.id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS)
        perms = bot_permissions if isinstance(bot_permissions, int) else permission_bits(*bot_permissions)
        bot_role = Role(
            id=w.snowflake(), name=self.app_name, permissions=perms, position=1, managed=True,
            tags={"bot_id": str(self.bot_user.id)},
        )  # fmt: skip
        guild.roles[bot_role.id] = bot_role
        w.guilds[guild.id] = guild
        guild.members[owner.id] = Member(user=owner, guild_id=guild.id)
        guild.members[self.bot_user.id] = Member(
            user=self.bot_user, guild_id=guild.id, role_ids=[bot_role.id]
        )
        for index, channel_name in enumerate(channels):
            self._new_channel(guild, channel_name, position=index)
        self.gateway.dispatch_if_live("GUILD_CREATE", payloads.guild_create(guild), guild_id=guild.id)
        return guild

    def bot_role(self, guild: Guild | None = None) -> Role:
        guild = guild or self.guild
        return next(
            r
            for r in guild.roles.values()
            if r.managed and (r.tags or {}).get("bot_id") == str(self.bot_user.id)
        )

    def _new_channel(self, guild: Guild, name: str, **kwargs: Any) -> Channel:
        channel = Channel(id=self.world.snowflake(), name=name, guild_id=guild.id, **kwargs)
        guild.channels[channel.id] = channel
        self.world.channels[channel.id] = channel
        self.world.channel_messages[channel.id] = []
        return channel

    @on_loop
    def add_channel(
        self,
        guild: Guild | None,
        name: str,
        *,
        type: int = CHANNEL_TEXT,
        topic: str | None = None,
        nsfw: bool = False,
    ) -> Channel:
        guild = guild or self.guild
        channel = self._new_channel(
            guild, name, type=type, topic=topic, nsfw=nsfw, position=len(guild.channels)
        )
        self.gateway.dispatch_if_live("CHANNEL_CREATE", payloads.channel(channel), guild_id=guild.id)
        return channel

    @on_loop
    def delete_channel(self, channel: Channel) -> None:
        channel.deleted = True
        if channel.guild_id:
            self.gateway.dispatch_if_live(
                "CHANNEL_DELETE", payloads.channel(channel), guild_id=channel.guild_id
            )

    @on_loop
    def add_role(self, guild: Guild | None, name: str, *, permissions: Iterable[str] | int = ()) -> Role:
        guild = guild or self.guild
        perms = permissions if isinstance(permissions, int) else permission_bits(*permissions)
        role = Role(id=self.world.snowflake(), name=name, permissions=perms, position=len(guild.roles))
        guild.roles[role.id] = role
        self.gateway.dispatch_if_live(
            "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": payloads.role(role)}, guild_id=guild.id
        )
        return role

    @on_loop
    def add_member(
        self,
        guild: Guild | None,
        user: User | str,
        *,
        roles: Iterable[Role] = (),
        permissions: Iterable[str] | int | None = None,
        nick: str | None = None,
        global_name: str | None = None,
    ) -> Member:
        """Add `user` (a User, or a username to create) to `guild`.

        `permissions` (names or bits) adds a role granting them."""
        guild = guild or self.guild
        if isinstance(user, str):
            user = self.add_user(user, global_name=global_name)
        role_ids = [r.id for r in roles]
        if permissions is not None:
            role_ids.append(self.add_role(guild, f"{user.username}-perms", permissions=permissions).id)
        member = Member(user=user, guild_id=guild.id, role_ids=role_ids, nick=nick)
        guild.members[user.id] = member
        return member

    @on_loop
    def set_premium_tier(self, guild: Guild, tier: int) -> None:
        guild.premium_tier = tier
        self.gateway.dispatch_if_live("GUILD_UPDATE", payloads.guild_rest(guild), guild_id=guild.id)

    def _overwrite(self, channel: Channel, target: User | Role | None) -> Overwrite:
        target = target or self.bot_user
        kind = 0 if isinstance(target, Role) else 1
        ow = channel.overwrites.get(target.id)
        if ow is None:
            ow = channel.overwrites[target.id] = Overwrite(id=target.id, type=kind)
        return ow

    def _channel_update(self, channel: Channel) -> None:
        if channel.guild_id:
            self.gateway.dispatch_if_live(
                "CHANNEL_UPDATE", payloads.channel(channel), guild_id=channel.guild_id
            )

    @on_loop
    def deny(self, channel: Channel, *permissions: str, target: User | Role | None = None) -> None:
        """Deny permissions in `channel` to the bot (default) or another user/role, via an overwrite."""
        ow = self._overwrite(channel, target)
        bits = permission_bits(*permissions)
        ow.deny |= bits
        ow.allow &= ~bits
        self._channel_update(channel)

    @on_loop
    def allow(self, channel: Channel, *permissions: str, target: User | Role | None = None) -> None:
        ow = self._overwrite(channel, target)
        bits = permission_bits(*permissions)
        ow.allow |= bits
        ow.deny &= ~bits
        self._channel_update(channel)

    @on_loop
    def refuse_dms(self, user: User, refuse: bool = True) -> None:
        """DMs from the bot to `user` then fail with 403 / 50007."""
        user.accepts_dms = not refuse

    @on_loop
    def rate_limit(
        self, route_pattern: str, *, times: int = 1, retry_after: float = 0.2, is_global: bool = False
    ) -> RateLimitRule:
        """Answer the next `times` matching requests with 429. Pattern: fnmatch over "METHOD /path"
        (path after /api/v10), e.g. "POST /channels/*/messages"; without a method it matches any."""
        rule = RateLimitRule(route_pattern, times, retry_after, is_global)
        self.world.rate_limits.append(rule)
        return rule

    @on_loop
    def slow_answer(self, route_pattern: str, *, seconds: float, times: int = 1) -> SlowAnswerRule:
        """Carry out the next `times` matching requests, then hold each answer back `seconds` (a response
        that arrives late, or never when the client dies first). Pattern as for `rate_limit`."""
        rule = SlowAnswerRule(route_pattern, times, seconds)
        self.world.slow_answers.append(rule)
        return rule

    @on_loop
    def upload(
        self, filename: str, data: bytes, content_type: str | None = None, *, ephemeral: bool = False
    ) -> Attachment:
        """Put a file on the fake CDN (width/height are read from image bytes)."""
        return self.world.register_attachment(filename, data, content_type=content_type, ephemeral=ephemeral)

    def _as_attachment(self, spec: FileSpec, *, ephemeral: bool = False) -> Attachment:
        if isinstance(spec, Attachment):
            return spec
        filename, data, *rest = spec
        return self.world.register_attachment(
            filename, data, content_type=rest[0] if rest else None, ephemeral=ephemeral
        )

    @on_loop
    def expire_links(self) -> None:
        """Make every CDN link issued so far expire now (as Discord's signed links do after a while)."""
        for att in self.world.attachments.values():
            att.expires_at = utcnow()
            self.world.sign_attachment(att)

    @on_loop
    def disconnect_gateway(self, code: int = 4000, *, resumable: bool = True, shard: int = 0) -> None:
        """Close the bot's gateway connection (of `shard`); discord.py reconnects and RESUMEs (or
        re-identifies)."""
        loop = self._fake_loop()
        assert loop is not None
        task = loop.create_task(self.gateway.force_disconnect(code, resumable=resumable, shard=shard))
        self._background = task

    @on_loop
    def send_reconnect(self, shard: int = 0) -> None:
        """Send op 7 RECONNECT (to `shard`'s connection)."""
        self.gateway.send_reconnect(shard)

    # Driving the bot -------------------------------------------------------------------------------------
    def _guild_and_channel(
        self, guild: Guild | None, channel: Channel | None, user: User, dm: bool
    ) -> tuple[Guild | None, Channel]:
        if dm:
            return None, self.world.dm_channel_for(user)
        if channel is None:
            guild = guild or self.guild
            channel = self.channel if guild is self.guild else next(iter(guild.channels.values()))
        if channel.is_dm:
            return None, channel
        return self.world.guilds[channel.guild_id], channel  # type: ignore[index]

    def _find_command(self, name: str, ctype: int, guild: Guild | None) -> StoredCommand:
        for scope in ([guild.id] if guild else []) + [None]:
            cmd = cmds.find_command(self.world.commands.get(scope, {}), name, ctype)
            if cmd is not None:
                return cmd
        synced = sorted(c.name for store in self.world.commands.values() for c in store.values())
        raise LookupError(f"command {name!r} (type {ctype}) is not synced; synced commands: {synced}")

    def _dispatch(self, inter: Interaction, data: dict[str, Any] | None) -> Interaction:
        inter.payload = base_payload(self, inter, data)
        self.world.interactions[inter.id] = inter
        self.world.interactions_by_token[inter.token] = inter
        inter.dispatched_at = time.monotonic()
        guild_id = inter.guild.id if inter.guild is not None else None
        self.gateway.dispatch("INTERACTION_CREATE", inter.payload, guild_id=guild_id)
        return inter

    @on_loop
    def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: User | None = None,
        guild: Guild | None = None,
        channel: Channel | None = None,
        attachments: dict[str, FileSpec] | None = None,
        subcommand: str | None = None,
        dm: bool = False,
        strict: bool = True,
    ) -> Interaction:
        """Invoke `/name` as a Discord client would, with options typed per the synced schema.

        `options`: name -> value (str/int/float/bool, User/Role/Channel for those types, an Attachment or
        (filename, bytes[, content_type]) for attachment options). `attachments` is the same for attachment
        options, kept separate for readability. `subcommand` is "sub" or "group sub". `strict` applies the
        client's own checks (required, choices, max_length) and raises ValueError when they would fail."""
        user = user or self.member
        guild, channel = self._guild_and_channel(guild, channel, user, dm)
        cmd = self._find_command(name, cmds.CHAT_INPUT, guild)
        path, schema = cmds.leaf_schema(cmd, subcommand)
        given = dict(options or {})
        given.update(attachments or {})
        by_name = {o["name"]: o for o in schema}
        unknown = set(given) - set(by_name)
        if unknown:
            raise ValueError(f"/{name} has no options {sorted(unknown)}; it has {sorted(by_name)}")
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        for opt in schema:
            if opt["name"] not in given:
                if strict and opt.get("required"):
                    raise ValueError(f"/{name}: option {opt['name']!r} is required")
                continue
            value = given[opt["name"]]
            leaf.append(
                {
                    "name": opt["name"],
                    "type": opt["type"],
                    "value": self._option_value(opt, value, resolved, guild, strict),
                }
            )
        options_payload: list[dict[str, Any]] = leaf
        for i, part in enumerate(reversed(path)):
            kind = cmds.SUB_COMMAND if i == 0 else cmds.SUB_COMMAND_GROUP
            options_payload = [{"name": part, "type": kind, "options": options_payload}]
        data: dict[str, Any] = {"id": str(cmd.id), "name": cmd.name, "type": cmds.CHAT_INPUT}
        if options_payload:
            data["options"] = options_payload
        if resolved:
            data["resolved"] = resolved
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        inter = Interaction(
            self, itype=APPLICATION_COMMAND, user=user, channel=channel, guild=guild, command=cmd
        )
        return self._dispatch(inter, data)

    def _option_value(
        self,
        opt: dict[str, Any],
        value: Any,
        resolved: dict[str, dict[str, Any]],
        guild: Guild | None,
        strict: bool,
    ) -> Any:
        otype = opt["type"]
        if otype == cmds.ATTACHMENT:
            att = self._as_attachment(value, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment(att)
            return str(att.id)
        if otype in (cmds.USER_OPT, cmds.MENTIONABLE) and isinstance(value, User | Member):
            user = value.user if isinstance(value, Member) else value
            resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
            member = guild.members.get(user.id) if guild else None
            if member is not None:
                perms = guild.base_permissions(user.id) if guild else 0
                resolved.setdefault("members", {})[str(user.id)] = payloads.member(
                    member, with_user=False, permissions=perms
                )
            return str(user.id)
        if otype in (cmds.ROLE, cmds.MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
            return str(value.id)
        if otype == cmds.CHANNEL and isinstance(value, Channel):
            data = payloads.channel(value)
            data["permissions"] = str(self.world.bot_permissions(value))
            resolved.setdefault("channels", {})[str(value.id)] = data
            return str(value.id)
        if otype in (cmds.USER_OPT, cmds.ROLE, cmds.CHANNEL, cmds.MENTIONABLE):
            raise ValueError(f"option {opt['name']}: pass a User/Member, Role or Channel object")
        return cmds.coerce_option(opt, value, strict=strict)

    @on_loop
    def context_menu(self, name: str, target: Message | User, *, user: User | None = None) -> Interaction:
        """Invoke a message (target is a Message) or user (target is a User) context-menu command."""
        user = user or self.member
        if isinstance(target, Message):
            channel = self.world.channels[target.channel_id]
            guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
            cmd = self._find_command(name, cmds.MESSAGE, guild)
            resolved = {"messages": {str(target.id): payloads.message(self.world, target)}}
            target_id = target.id
        else:
            guild, channel = self.guild, self.channel
            cmd = self._find_command(name, cmds.USER, guild)
            resolved = {"users": {str(target.id): payloads.user(target)}}
            member = guild.members.get(target.id)
            if member is not None:
                resolved["members"] = {str(target.id): payloads.member(member, with_user=False)}
            target_id = target.id
        data: dict[str, Any] = {
            "id": str(cmd.id),
            "name": cmd.name,
            "type": cmd.type,
            "target_id": str(target_id),
            "resolved": resolved,
        }
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        inter = Interaction(
            self, itype=APPLICATION_COMMAND, user=user, channel=channel, guild=guild, command=cmd
        )
        return self._dispatch(inter, data)

    @on_loop
    def click(self, message: Message, custom_id: str, *, user: User | None = None) -> Interaction:
        """Press the button `custom_id` on `message` (type 3 component interaction)."""
        comp = self._component(message, custom_id)
        if comp.get("type") != 2:
            raise ValueError(f"{custom_id!r} is not a button (type {comp.get('type')})")
        return self._component_interaction(message, comp, {"custom_id": custom_id, "component_type": 2}, user)

    @on_loop
    def select(
        self, message: Message, custom_id: str, values: list[str], *, user: User | None = None
    ) -> Interaction:
        """Choose `values` in the string select `custom_id` on `message`."""
        comp = self._component(message, custom_id)
        data = {
            "custom_id": custom_id,
            "component_type": comp.get("type", 3),
            "values": [str(v) for v in values],
        }
        return self._component_interaction(message, comp, data, user)

    def _component(self, message: Message, custom_id: str) -> dict[str, Any]:
        for comp in walk_components(message.components):
            if comp.get("custom_id") == custom_id:
                if comp.get("disabled"):
                    raise ValueError(f"component {custom_id!r} is disabled; a Discord client cannot use it")
                return comp
        raise ValueError(
            f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids()}"
        )

    def _component_interaction(
        self, message: Message, comp: dict[str, Any], data: dict[str, Any], user: User | None
    ) -> Interaction:
        if message.deleted:
            raise ValueError("the message was deleted")
        if comp.get("id") is not None:
            data["id"] = comp["id"]
        user = user or self.member
        channel = self.world.channels[message.channel_id]
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        inter = Interaction(
            self, itype=MESSAGE_COMPONENT, user=user, channel=channel, guild=guild, source_message=message
        )
        return self._dispatch(inter, data)

    @on_loop
    def submit_modal(
        self,
        source: Interaction | str,
        values: dict[str, Any],
        *,
        user: User | None = None,
        strict: bool = True,
    ) -> Interaction:
        """Submit the modal the bot opened in answer to `source` (an Interaction, or the modal's custom_id:
        the latest modal with it), filling inputs by custom_id. See `modal_submit_components` for values."""
        if isinstance(source, str):
            opened = [
                i for i in self.world.interactions.values() if i.modal and i.modal.get("custom_id") == source
            ]
            if not opened:
                raise LookupError(f"no modal with custom_id {source!r} was opened")
            source = opened[-1]
        if source.modal is None:
            kind = source.response.type if source.response else "no response yet"
            raise ValueError(f"{source!r} was not answered with a modal (response: {kind})")
        components, resolved = modal_submit_components(
            source.modal, values, strict=strict, upload=lambda s: self._as_attachment(s, ephemeral=True)
        )
        data: dict[str, Any] = {"custom_id": source.modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        inter = Interaction(
            self,
            itype=MODAL_SUBMIT,
            user=user or source.user,
            channel=source.channel,
            guild=source.guild,
            source_message=source.source_message,
            parent=source,
        )
        return self._dispatch(inter, data)

    @on_loop
    def post_message(
        self,
        channel: Channel | None,
        author: User | Member,
        content: str = "",
        *,
        mentions: Iterable[User] = (),
        reference: Message | None = None,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
    ) -> Message:
        """A user posts a message (dispatched as MESSAGE_CREATE). `mentions` not already in `content` are
        prepended as <@id>; `reference` makes it a reply; `attachments` are (filename, bytes[, type])."""
        channel = channel or self.channel
        author = author.user if isinstance(author, Member) else author
        prefix = " ".join(
            u.mention for u in mentions if u.mention not in content and f"<@!{u.id}>" not in content
        )
        text = f"{prefix} {content}".strip() if prefix else content
        ref = None
        if reference is not None:
            ref = {"type": 0, "message_id": str(reference.id), "channel_id": str(reference.channel_id)}
            if reference.guild_id:
                ref["guild_id"] = str(reference.guild_id)
        files = [self._as_attachment(a) for a in attachments]
        return self.world.create_message(
            channel,
            author,
            content=text,
            attachments=files,
            embeds=embeds,
            message_reference=ref,
            via="user",
            validate=True,
        )

    @on_loop
    def delete_message(self, message: Message) -> None:
        """A user/moderator deletes `message` (MESSAGE_DELETE is dispatched)."""
        self.world.delete_message(message)

    @on_loop
    def react(self, message: Message, emoji: str, *, user: User | None = None) -> None:
        user = user or self.member
        message.reactions.setdefault(emoji, set()).add(user.id)
        if self.gateway.live_for(message.guild_id):
            data = {
                "user_id": str(user.id), "channel_id": str(message.channel_id), "message_id": str(message.id),
                "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0,
            }  # fmt: skip
            if message.guild_id:
                data["guild_id"] = str(message.guild_id)
            self.gateway.dispatch("MESSAGE_REACTION_ADD", data, guild_id=message.guild_id)

    def _on_message_event(self, event: str, msg: Message) -> None:
        self.gateway.on_message_event(event, msg)

    # Queries -----------------------------------------------------------------------------------------------
    @property
    def commands(self) -> dict[str, StoredCommand]:
        """Synced commands by name (global, then the default guild's override them)."""
        out = {c.name: c for c in self.world.commands.get(None, {}).values()}
        out.update({c.name: c for c in self.world.commands.get(self.guild.id, {}).values()})
        return out

    @property
    def command_syncs(self) -> int:
        """How many bulk command syncs (PUT) the bot made: Discord limits these per day."""
        return len(self.world.command_syncs)

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self.world.requests)

    @property
    def unknown_routes(self) -> list[RequestRecord]:
        return list(self.world.unknown_routes)

    @property
    def internal_errors(self) -> list[tuple[RequestRecord, BaseException]]:
        """Exceptions raised inside the fake's handlers (answered 500): a bug in the fake if not empty."""
        return list(self.world.internal_errors)

    @property
    def interactions(self) -> list[Interaction]:
        return list(self.world.interactions.values())

    @property
    def recommended_shards(self) -> int:
        """The `shards` GET /gateway/bot answers: one per 1,000 guilds the bot is in, as Discord advises."""
        bot_guilds = sum(1 for g in self.world.guilds.values() if self.bot_user.id in g.members)
        return max(1, -(-bot_guilds // 1000))

    def shard_of(self, guild: Guild, shard_count: int) -> int:
        """The shard that carries `guild` when the bot runs `shard_count` shards."""
        return shard_of(guild.id, shard_count)

    @property
    def application_flags(self) -> int:
        """`flags` of GET /applications/@me: the portal toggles of `privileged_intents`."""
        return application_flags(self.privileged_intents)

    @property
    def rest_intents(self) -> int | None:
        """What REST reads of messages are filtered by: the application's message-content toggle (None when
        the fake doesn't enforce the intent at all)."""
        if not self.enforce_message_content_intent:
            return None
        return INTENT_MESSAGE_CONTENT if "message_content" in self.privileged_intents else 0

    @property
    def intents(self) -> int | None:
        """Intents of the latest IDENTIFY (None before the bot identified)."""
        payloads_ = self.gateway.identify_payloads
        return payloads_[-1]["intents"] if payloads_ else None

    def requests_matching(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        route: str | None = None,
    ) -> list[RequestRecord]:
        """Recorded requests filtered by method, fnmatch `path` (after /api/v10), `route` template, status."""
        return [
            r
            for r in list(self.world.requests)
            if (method is None or r.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(r.path, path))
            and (route is None or r.route == route)
            and (status is None or r.status == status)
        ]

    def messages(
        self, channel: Channel | None = None, *, include_ephemeral: bool = True, include_deleted: bool = False
    ) -> list[Message]:
        """Messages in `channel` (default #general), oldest first."""
        channel = channel or self.channel
        return [
            m
            for m in list(self.world.channel_messages.get(channel.id, []))
            if (include_ephemeral or not m.ephemeral) and (include_deleted or not m.deleted)
        ]

    def message(self, message_id: int | str) -> Message:
        return self.world.messages_by_id[int(message_id)]

    def dm_channel(self, user: User) -> Channel | None:
        return self.world.dm_channels.get(user.id)

    def dm_messages(self, user: User) -> list[Message]:
        channel = self.world.dm_channels.get(user.id)
        return self.messages(channel) if channel is not None else []

    def bot_messages(self, channel: Channel | None = None) -> list[Message]:
        return [m for m in self.messages(channel) if m.author is self.bot_user]

    def cdn_bytes(self, item: Attachment | str) -> bytes:
        """The bytes behind an attachment (or a CDN URL the fake issued)."""
        if isinstance(item, Attachment):
            return item.data
        att_id = int(item.split("?")[0].rstrip("/").split("/")[-2])
        return self.world.attachments[att_id].data

    # Waiting ---------------------------------------------------------------------------------------------
    async def _wait_until(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(repr(r) for r in self.world.requests[-8:])
                raise TimeoutError(
                    f"fake_discord: no {what} within {timeout}s. Last requests: {recent or 'none'}"
                )
            await self.world.pulse.wait(remaining)

    @waitable
    async def wait_until_ready(self, timeout: float = 15.0) -> None:
        """Until the bot has identified and received READY + GUILD_CREATE on a live connection."""
        await self._wait_until(lambda: self.gateway.connected, timeout, "gateway session (IDENTIFY)")

    @waitable
    async def wait_for_shards(
        self, shards: Iterable[int], shard_count: int, *, since: int = 0, timeout: float = 15.0
    ) -> None:
        """Until each of `shards` (of `shard_count`) is on a live session from the `since`-th IDENTIFY on."""
        wanted = set(shards)
        await self._wait_until(
            lambda: wanted <= self.gateway.live_shards(since, shard_count),
            timeout,
            f"gateway sessions for shards {sorted(wanted)} of {shard_count}",
        )

    @waitable
    async def wait_for_commands(self, *names: str, timeout: float = 15.0) -> dict[str, StoredCommand]:
        """Until the bot synced commands (all of `names`, or any if none given)."""

        def check() -> dict[str, StoredCommand] | None:
            synced = self.commands
            if names and not all(n in synced for n in names):
                return None
            return synced or None

        return await self._wait_until(check, timeout, f"command sync of {names or 'any command'}")

    @waitable
    async def wait_for_message(
        self,
        predicate: Callable[[Message], Any] | None = None,
        timeout: float = 10.0,
        *,
        channel: Channel | None = None,
        after: Message | None = None,
        author: User | None = None,
    ) -> Message:
        """First message (any channel unless `channel`) by `author` (default the bot) matching `predicate`."""
        author = author or self.bot_user

        def check() -> Message | None:
            for msg in list(self.world.messages_by_id.values()):
                if msg.deleted or msg.author is not author:
                    continue
                if channel is not None and msg.channel_id != channel.id:
                    continue
                if after is not None and msg.id <= after.id:
                    continue
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self._wait_until(check, timeout, "matching message")

    @waitable
    async def wait_for_request(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        timeout: float = 10.0,
        count: int = 1,
    ) -> RequestRecord:
        """Until `count` requests matching (see `requests_matching`) were made; returns the last."""

        def check() -> RequestRecord | None:
            found = self.requests_matching(method, path, status=status)
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(check, timeout, f"request {method or '*'} {path or '*'}")

    @waitable
    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 10.0, what: str = "condition"
    ) -> T:
        """Until `predicate()` is truthy (evaluated on the fake's loop); returns its value."""
        return await self._wait_until(predicate, timeout, what)

    @waitable
    async def wait_for_resume(self, timeout: float = 15.0, count: int = 1) -> None:
        await self._wait_until(
            lambda: sum(e.kind == "resume" for e in self.gateway.log) >= count and self.gateway.connected,
            timeout,
            "gateway RESUME",
        )


__all__ = ["PERMISSIONS", "FakeDiscord"]
