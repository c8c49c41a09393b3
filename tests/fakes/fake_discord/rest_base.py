"""What every part of the REST API shares: the request keys the middleware fills, Discord's JSON response,
multipart uploads, and `RestBase` with the helpers the route groups use (attachments from uploads, the
JSON body, messages as the app reads them)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import payloads
from .model import Attachment, Message, RequestRecord
from .util import MIB, DiscordHTTPError, invalid_form

if TYPE_CHECKING:
    from .fake import FakeDiscord

API = "/api/v10"
JSON_BODY: web.RequestKey[Any] = web.RequestKey("fake_discord_json", object)
UPLOADS: web.RequestKey[list[Upload]] = web.RequestKey("fake_discord_uploads", list)
RECORD: web.RequestKey[RequestRecord] = web.RequestKey("fake_discord_record", RequestRecord)
MAX_STORED_UPLOAD = 110 * MIB  # bytes beyond this are counted, not kept


def json_response(data: Any, status: int = 200) -> web.Response:
    """Discord sends exactly `Content-Type: application/json` (discord.py compares the header verbatim)."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


class Upload:
    def __init__(self, field: str, filename: str, content_type: str | None) -> None:
        self.field = field
        self.filename = filename
        self.content_type = content_type
        self.size = 0
        self.chunks: list[bytes] | None = []

    @property
    def index(self) -> int | None:
        if self.field.startswith("files[") and self.field.endswith("]"):
            try:
                return int(self.field[6:-1])
            except ValueError:
                return None
        if self.field.startswith("file"):
            digits = self.field[4:]
            return int(digits) if digits.isdigit() else 0
        return None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks or [])


class RestBase:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world
        self._closing = asyncio.Event()  # ends held-back answers when the fake stops

    def _app(self, request: web.Request) -> None:
        if request.match_info.get("app_id") != str(self.world.application_id):
            raise DiscordHTTPError(403, 50001, "Missing Access")

    def _attachments_from_uploads(
        self, request: web.Request, payload: dict[str, Any], limit: int, channel_id: int | None
    ) -> dict[int, Attachment]:
        """Turn multipart files into CDN attachments keyed by their `files[n]` index; 413 over `limit`."""
        uploads: list[Upload] = request[UPLOADS]
        for up in uploads:
            if up.size > limit:
                raise DiscordHTTPError(413, 40005, "Request entity too large")
        meta = {}
        for item in payload.get("attachments") or []:
            try:
                meta[int(item.get("id"))] = item
            except (TypeError, ValueError):
                continue
        out: dict[int, Attachment] = {}
        for n, up in enumerate(uploads):
            index = up.index if up.index is not None else n
            info = meta.get(index, {})
            out[index] = self.world.register_attachment(
                info.get("filename") or up.filename,
                up.data,
                content_type=up.content_type if up.content_type != "application/octet-stream" else None,
                channel_id=channel_id,
                description=info.get("description"),
                title=info.get("title"),
            )
        return out

    @staticmethod
    def _ordered(payload: dict[str, Any], new: dict[int, Attachment]) -> list[Attachment]:
        order = []
        for item in payload.get("attachments") or []:
            try:
                key = int(item.get("id"))
            except (TypeError, ValueError):
                continue
            if key in new:
                order.append(new.pop(key))
        return order + list(new.values())

    def _json(self, request: web.Request) -> dict[str, Any]:
        body = request[JSON_BODY]
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise invalid_form("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return body

    def _msg(self, world_msg: Message) -> web.Response:
        return json_response(self._seen(world_msg))

    def _seen(self, world_msg: Message) -> dict[str, Any]:
        """A message as the app reads it over REST: unless the application has the message-content intent
        (the portal's toggle, not what a gateway session asked for), others' messages that neither mention
        it nor are in DMs come back with content, embeds, attachments and components blank."""
        return payloads.message(self.world, world_msg, intents=self.fake.rest_intents)
