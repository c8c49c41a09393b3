"""`Queries`: what a test reads back (synced commands, recorded requests, messages, CDN bytes), and the
waits that block or are awaited until something happened."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from .fake_base import FakeBase, T
from .gateway import shard_of
from .interactions import Interaction
from .model import Attachment, Channel, Guild, Message, RequestRecord, StoredCommand, User
from .sync import waitable
from .util import INTENT_MESSAGE_CONTENT, application_flags


class Queries(FakeBase):
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
