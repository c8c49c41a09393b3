"""The gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME with replay, forced
disconnects, INVALID_SESSION, intent-filtered dispatch with sequence numbers, zlib-stream when asked.

Sharding as Discord does it: IDENTIFY's `shard: [id, count]` (none: shard 0 of 1) makes the session one
shard's. Each shard has one session; a second IDENTIFY for a shard replaces that shard's session only. A
guild and all its events belong to shard `(guild_id >> 22) % count`, DMs to shard 0. The fake keeps one shard
layout: an IDENTIFY with another shard count starts a new layout and ends every session of the old one. An
invalid shard closes with 4010; a shard that would carry more than `max_guilds_per_shard` guilds with 4011.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads
from .model import Message
from .util import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    PRIVILEGED_INTENTS,
)

if TYPE_CHECKING:
    from .fake import FakeDiscord

log = logging.getLogger("fake_discord")

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE, OP_RESUME = 0, 1, 2, 3, 4, 6
OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 7, 8, 9, 10, 11


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    compress: bool
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    compressor: Any = None
    session: Session | None = None
    heartbeats: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    close_code: int | None = None

    def send(self, frame: dict[str, Any]) -> None:
        self.queue.put_nowait(json.dumps(frame, separators=(",", ":")))


@dataclass(eq=False)
class Session:
    id: str
    intents: int
    identify: dict[str, Any]
    shard_id: int = 0
    shard_count: int = 1
    ordinal: int = 0  # how many IDENTIFYs came before: tells a new process's sessions from older ones
    seq: int = 0
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    conn: Connection | None = None
    invalidated: bool = False
    resumes: int = 0

    def dispatch(self, event: str, data: Any) -> int:
        self.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
        self.events.append((self.seq, frame))
        if self.conn is not None:
            self.conn.send(frame)
        return self.seq

    @property
    def live(self) -> bool:
        """Valid and on an open connection: events reach the bot now."""
        return not self.invalidated and self.conn is not None and not self.conn.ws.closed


@dataclass
class GatewayLogEntry:
    at: float
    kind: str  # "connect", "identify", "resume", "invalid_session", "close", "closed", "disconnect_forced"
    detail: dict[str, Any] = field(default_factory=dict)


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard that carries a guild's events (Discord's formula); DMs are shard 0's."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, Session] = {}
        self.shards: dict[int, Session] = {}  # the session of each shard of the current layout
        self.shard_count = 1
        self.connections: list[Connection] = []
        self.log: list[GatewayLogEntry] = []
        self.identify_payloads: list[dict[str, Any]] = []

    # Public ----------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """The bot has a session, and every shard that has one is on a live connection."""
        sessions = [s for s in self.shards.values() if not s.invalidated]
        return bool(sessions) and all(s.live for s in sessions)

    def shard_for(self, guild_id: int | None) -> int:
        return shard_of(guild_id, self.shard_count)

    def session_for(self, guild_id: int | None) -> Session | None:
        """The valid session that carries `guild_id`'s events (None: a DM), if any."""
        session = self.shards.get(self.shard_for(guild_id))
        return session if session is not None and not session.invalidated else None

    def live_for(self, guild_id: int | None) -> bool:
        session = self.session_for(guild_id)
        return session is not None and session.live

    def live_shards(self, since: int = 0, shard_count: int | None = None) -> set[int]:
        """Shards on a live connection whose session came from the `since`-th IDENTIFY or a later one."""
        return {
            shard
            for shard, session in self.shards.items()
            if session.live
            and session.ordinal >= since
            and (shard_count is None or session.shard_count == shard_count)
        }

    def dispatch(self, event: str, data: Any, *, guild_id: int | None) -> int:
        """Send an event to the session of `guild_id`'s shard (None: a DM or no guild, shard 0)."""
        session = self.session_for(guild_id)
        if session is None:
            shard = self.shard_for(guild_id)
            raise RuntimeError(
                f"fake_discord: cannot dispatch {event}: the bot has no gateway session for shard {shard} "
                f"of {self.shard_count} (not connected?)"
            )
        seq = session.dispatch(event, data)
        self.fake.world.pulse.fire()
        return seq

    def dispatch_if_live(self, event: str, data: Any, *, guild_id: int | None) -> None:
        """A change of the world: the shard's session hears of it if it is connected (else READY tells)."""
        if self.live_for(guild_id):
            self.dispatch(event, data, guild_id=guild_id)

    def on_message_event(self, event: str, msg: Message) -> None:
        """Deliver MESSAGE_CREATE/UPDATE/DELETE as Discord would, given the session's intents."""
        session = self.session_for(msg.guild_id)
        if session is None:
            return
        channel = self.fake.world.channels.get(msg.channel_id)
        needed = INTENT_DIRECT_MESSAGES if channel is not None and channel.is_dm else INTENT_GUILD_MESSAGES
        if not session.intents & needed:
            return
        if event == "MESSAGE_DELETE":
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id:
                data["guild_id"] = str(msg.guild_id)
        else:
            intents = session.intents if self.fake.enforce_message_content_intent else None
            data = payloads.message(self.fake.world, msg, gateway=True, intents=intents)
        session.dispatch(event, data)

    async def force_disconnect(self, code: int = 4000, *, resumable: bool = True, shard: int = 0) -> None:
        session = self.shards.get(shard)
        self.log.append(
            GatewayLogEntry(
                time.monotonic(),
                "disconnect_forced",
                {"code": code, "resumable": resumable, "shard": shard},
            )
        )
        if session is None:
            return
        if not resumable:
            session.invalidated = True
        conn = session.conn
        if conn is not None:
            session.conn = None
            conn.close_code = code
            conn.queue.put_nowait(None)
            await conn.ws.close(code=code, message=b"forced by test")

    def send_reconnect(self, shard: int = 0) -> None:
        session = self.shards.get(shard)
        if session is not None and session.conn is not None:
            session.conn.send({"op": OP_RECONNECT, "d": None})

    async def close_all(self) -> None:
        for conn in list(self.connections):
            conn.queue.put_nowait(None)
            if not conn.ws.closed:
                await conn.ws.close(code=1001, message=b"fake shutting down")

    # Websocket handler ---------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4096 * 1024, compress=True, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream" and self.fake.gateway_compress
        conn = Connection(ws=ws, compress=compress, compressor=zlib.compressobj() if compress else None)
        self.connections.append(conn)
        self.log.append(GatewayLogEntry(time.monotonic(), "connect", {"query": dict(request.query)}))
        writer = asyncio.create_task(self._writer(conn))
        conn.send(
            {
                "op": OP_HELLO,
                "d": {
                    "heartbeat_interval": self.fake.heartbeat_interval,
                    "_trace": ['["fake-gateway",{"micros":0}]'],
                },
                "s": None,
                "t": None,
            }
        )
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await self._close(conn, 4002, "Error while decoding payload.")
                    break
                if not await self._handle_frame(conn, frame):
                    break
        finally:
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            conn.queue.put_nowait(None)
            await writer
            self.log.append(
                GatewayLogEntry(time.monotonic(), "close", {"code": conn.close_code or ws.close_code})
            )
            self.fake.world.pulse.fire()
        return ws

    async def _writer(self, conn: Connection) -> None:
        while True:
            text = await conn.queue.get()
            if text is None or conn.ws.closed:
                return
            try:
                if conn.compressor is not None:
                    data = conn.compressor.compress(text.encode()) + conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await conn.ws.send_bytes(data)
                else:
                    await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        conn.close_code = code
        log.info("fake_discord gateway: closing with %s %s", code, reason)
        self.log.append(GatewayLogEntry(time.monotonic(), "closed", {"code": code, "reason": reason}))
        conn.queue.put_nowait(None)
        await conn.ws.close(code=code, message=reason.encode())

    async def _handle_frame(self, conn: Connection, frame: dict[str, Any]) -> bool:
        op = frame.get("op")
        data = frame.get("d")
        if op == OP_HEARTBEAT:
            conn.heartbeats += 1
            conn.send({"op": OP_HEARTBEAT_ACK})
            return True
        if op == OP_IDENTIFY:
            return await self._identify(conn, data or {})
        if op == OP_RESUME:
            return await self._resume(conn, data or {})
        if conn.session is None:
            await self._close(conn, 4003, "Not authenticated.")
            return False
        if op in (OP_PRESENCE, OP_VOICE, OP_REQUEST_MEMBERS):
            return True
        await self._close(conn, 4001, "Unknown opcode.")
        return False

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> bool:
        if conn.session is not None:
            await self._close(conn, 4005, "Already authenticated.")
            return False
        if data.get("token") != self.fake.token:
            await self._close(conn, 4004, "Authentication failed.")
            return False
        intents = data.get("intents")
        if not isinstance(intents, int):
            await self._close(conn, 4013, "Invalid intent(s).")
            return False
        enabled = 0
        for name in self.fake.privileged_intents:
            enabled |= PRIVILEGED_INTENTS[name]
        privileged = 0
        for bit in PRIVILEGED_INTENTS.values():
            privileged |= bit
        if intents & privileged & ~enabled:
            await self._close(conn, 4014, "Disallowed intent(s).")
            return False
        shard = data.get("shard", [0, 1])
        if not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            await self._close(conn, 4010, "Invalid shard.")
            return False
        shard_id, shard_count = shard
        world = self.fake.world
        assert world.bot_user is not None
        bot_guilds = [
            g
            for g in world.guilds.values()
            if world.bot_user.id in g.members and shard_of(g.id, shard_count) == shard_id
        ]
        if len(bot_guilds) > self.fake.max_guilds_per_shard:
            await self._close(conn, 4011, "Sharding required.")
            return False
        self.identify_payloads.append({k: v for k, v in data.items() if k != "token"})
        session = Session(
            id=secrets.token_hex(16),
            intents=intents,
            identify=data,
            shard_id=shard_id,
            shard_count=shard_count,
            ordinal=len(self.identify_payloads) - 1,
        )
        if shard_count != self.shard_count:  # a new layout: the old one's sessions end
            for old in self.shards.values():
                old.invalidated = True
            self.shards.clear()
            self.shard_count = shard_count
        previous = self.shards.get(shard_id)
        if previous is not None:
            previous.invalidated = True  # this shard's session only; the other shards carry on
        self.sessions[session.id] = session
        self.shards[shard_id] = session
        session.conn = conn
        conn.session = session
        self.log.append(
            GatewayLogEntry(
                time.monotonic(),
                "identify",
                {"intents": intents, "session": session.id, "shard": [shard_id, shard_count]},
            )
        )
        ready: dict[str, Any] = {
            "v": 10,
            "user": payloads.client_user(world.bot_user),
            "user_settings": {},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in bot_guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.fake.gateway_url,
            "application": {"id": str(world.application_id), "flags": (1 << 19) | (1 << 23)},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth": {},
            "_trace": ['["fake-gateway",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        session.dispatch("READY", ready)
        for guild in bot_guilds:
            session.dispatch("GUILD_CREATE", payloads.guild_create(guild))
        world.pulse.fire()
        return True

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> bool:
        if data.get("token") != self.fake.token:
            await self._close(conn, 4004, "Authentication failed.")
            return False
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.invalidated:
            self.log.append(
                GatewayLogEntry(time.monotonic(), "invalid_session", {"session": data.get("session_id")})
            )
            conn.send({"op": OP_INVALID_SESSION, "d": False})
            return True
        seq = data.get("seq") or 0
        if seq > session.seq:
            await self._close(conn, 4007, "Invalid seq.")
            return False
        old = session.conn
        if old is not None and old is not conn:
            old.queue.put_nowait(None)
        session.conn = conn
        conn.session = session
        session.resumes += 1
        replay = [frame for s, frame in session.events if s > seq]
        self.log.append(
            GatewayLogEntry(
                time.monotonic(), "resume", {"session": session.id, "seq": seq, "replayed": len(replay)}
            )
        )
        for frame in replay:
            conn.send(frame)
        session.dispatch("RESUMED", {"_trace": ['["fake-gateway",{"micros":0}]']})
        self.fake.world.pulse.fire()
        return True
