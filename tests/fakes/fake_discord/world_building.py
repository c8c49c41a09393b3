"""`WorldBuilding`: the users, guilds, channels, roles, permissions and files the bot finds, and the faults
a test arranges (rate limits, late answers, expired CDN links, gateway disconnects)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import payloads
from .fake_base import FakeBase
from .model import CHANNEL_TEXT, Attachment, Channel, Guild, Member, Overwrite, Role, User
from .state import RateLimitRule, SlowAnswerRule
from .sync import on_loop
from .util import DEFAULT_BOT_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, permission_bits, utcnow


class WorldBuilding(FakeBase):
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

    def _set_overwrite(
        self, channel: Channel, permissions: tuple[str, ...], target: User | Role | None, *, allow: bool
    ) -> None:
        """Allow or deny `permissions` in `channel` to `target` (default the bot) in its overwrite, and tell
        the gateway (CHANNEL_UPDATE)."""
        target = target or self.bot_user
        ow = channel.overwrites.get(target.id)
        if ow is None:
            kind = 0 if isinstance(target, Role) else 1
            ow = channel.overwrites[target.id] = Overwrite(id=target.id, type=kind)
        bits = permission_bits(*permissions)
        if allow:
            ow.allow |= bits
            ow.deny &= ~bits
        else:
            ow.deny |= bits
            ow.allow &= ~bits
        if channel.guild_id:
            self.gateway.dispatch_if_live(
                "CHANNEL_UPDATE", payloads.channel(channel), guild_id=channel.guild_id
            )

    @on_loop
    def deny(self, channel: Channel, *permissions: str, target: User | Role | None = None) -> None:
        """Deny permissions in `channel` to the bot (default) or another user/role, via an overwrite."""
        self._set_overwrite(channel, permissions, target, allow=False)

    @on_loop
    def allow(self, channel: Channel, *permissions: str, target: User | Role | None = None) -> None:
        self._set_overwrite(channel, permissions, target, allow=True)

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
