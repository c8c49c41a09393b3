"""`FakeDiscord`: the test-facing API over the world, the REST routes and the gateway.

This module holds its construction and lifecycle (start, stop, threaded mode, the bot's environment); the
rest of the API comes from its parts: `WorldBuilding` (world_building.py), `Driving` (driving.py) and
`Queries` (queries.py), over the shared state declared in `FakeBase` (fake_base.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from aiohttp import web

from ..server import LoopbackServer
from .driving import Driving
from .gateway import Gateway
from .model import Message, User
from .queries import Queries
from .rest import RestApi
from .state import World, fake_token
from .util import PERMISSIONS, PRIVILEGED_INTENTS
from .world_building import WorldBuilding

PATCH_DIR = Path(__file__).resolve().parent.parent / "discord_patch"


class FakeDiscord(WorldBuilding, Driving, Queries):
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

    def _on_message_event(self, event: str, msg: Message) -> None:
        self.gateway.on_message_event(event, msg)


__all__ = ["PERMISSIONS", "FakeDiscord"]
