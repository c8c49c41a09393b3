"""`FakeBase`: the state every part of `FakeDiscord` shares, and the helpers more than one part uses.

`FakeDiscord` (fake.py) is composed of `WorldBuilding` (world_building.py), `Driving` (driving.py) and
`Queries` (queries.py) over this base; the attributes are set by `FakeDiscord.__init__` and its start."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from ..server import LoopbackServer
from .gateway import Gateway
from .model import Attachment, Channel, Guild, Role, User
from .state import World

T = TypeVar("T")
FileSpec = tuple[str, bytes] | tuple[str, bytes, str | None] | Attachment


class FakeBase:
    world: World
    gateway: Gateway
    server: LoopbackServer | None
    token: str
    app_name: str
    response_window: float
    token_lifetime: float
    privileged_intents: set[str]
    enforce_message_content_intent: bool
    bot_user: User
    owner: User
    guild: Guild
    channel: Channel
    member: User
    moderator_role: Role
    _background: asyncio.Task[None] | None

    def _fake_loop(self) -> asyncio.AbstractEventLoop | None:
        return self.server.loop if self.server is not None else None

    def _as_attachment(self, spec: FileSpec, *, ephemeral: bool = False) -> Attachment:
        if isinstance(spec, Attachment):
            return spec
        filename, data, *rest = spec
        return self.world.register_attachment(
            filename, data, content_type=rest[0] if rest else None, ephemeral=ephemeral
        )
