"""REST API under /api/v10 (and the CDN), as aiohttp routes, with Discord's status codes and error bodies.

Every request is recorded in `world.requests`. Unknown routes answer 404 and are logged and recorded in
`world.unknown_routes`, so a route discord.py needs but the fake lacks is visible at once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import commands as cmds
from . import payloads
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    Interaction,
    interaction_metadata,
)
from .model import Attachment, CallbackRecord, FileInfo, Message, RequestRecord, StoredCommand
from .state import (
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    MESSAGE_DEFAULT,
    allowed_message_flags,
)
from .util import (
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    MIB,
    DiscordHTTPError,
    invalid_form,
    unknown,
    utcnow,
)

if TYPE_CHECKING:
    from .fake import FakeDiscord

log = logging.getLogger("fake_discord")

API = "/api/v10"
JSON_BODY: web.RequestKey[Any] = web.RequestKey("fake_discord_json", object)
UPLOADS: web.RequestKey[list[Upload]] = web.RequestKey("fake_discord_uploads", list)
RECORD: web.RequestKey[RequestRecord] = web.RequestKey("fake_discord_record", RequestRecord)
MAX_STORED_UPLOAD = 110 * MIB  # bytes beyond this are counted, not kept
INTERACTION_MESSAGE_FLAGS = (
    FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
)
_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/")


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


class RestApi:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world
        self._closing = asyncio.Event()  # ends held-back answers when the fake stops

    # Plumbing --------------------------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.on_shutdown.append(self._on_shutdown)
        r = app.router
        p = API
        r.add_get(p + "/users/@me", self.get_me)
        r.add_get(p + "/users/{user_id}", self.get_user)
        r.add_post(p + "/users/@me/channels", self.create_dm)
        r.add_get(p + "/oauth2/applications/@me", self.get_application)
        r.add_get(p + "/applications/@me", self.get_application)
        r.add_get(p + "/gateway", self.get_gateway)
        r.add_get(p + "/gateway/bot", self.get_gateway_bot)
        for base in ("/applications/{app_id}/commands", "/applications/{app_id}/guilds/{guild_id}/commands"):
            r.add_get(p + base, self.list_commands)
            r.add_put(p + base, self.bulk_overwrite_commands)
            r.add_post(p + base, self.create_command)
            r.add_get(p + base + "/{command_id}", self.get_command)
            r.add_patch(p + base + "/{command_id}", self.edit_command)
            r.add_delete(p + base + "/{command_id}", self.delete_command)
        r.add_post(p + "/interactions/{interaction_id}/{token}/callback", self.interaction_callback)
        r.add_post(p + "/webhooks/{app_id}/{token}", self.execute_webhook)
        r.add_get(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self.get_webhook_message)
        r.add_patch(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self.edit_webhook_message)
        r.add_delete(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self.delete_webhook_message)
        r.add_get(p + "/channels/{channel_id}", self.get_channel)
        r.add_get(p + "/channels/{channel_id}/messages", self.list_messages)
        r.add_post(p + "/channels/{channel_id}/messages", self.create_message)
        r.add_get(p + "/channels/{channel_id}/messages/{message_id}", self.get_message)
        r.add_patch(p + "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        r.add_delete(p + "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        r.add_post(p + "/channels/{channel_id}/typing", self.typing)
        reaction = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
        r.add_put(p + reaction, self.add_reaction)
        r.add_delete(p + reaction, self.remove_reaction)
        r.add_get(p + "/guilds/{guild_id}", self.get_guild)
        r.add_get(p + "/guilds/{guild_id}/channels", self.get_guild_channels)
        r.add_get(p + "/guilds/{guild_id}/roles", self.get_guild_roles)
        r.add_get(p + "/guilds/{guild_id}/members", self.list_members)
        r.add_get(p + "/guilds/{guild_id}/members/{user_id}", self.get_member)
        r.add_route("*", p + "/{tail:.*}", self.unknown_route)
        for prefix in ("/cdn", "/media"):
            r.add_get(prefix + "/{folder}/{owner_id}/{attachment_id}/{filename}", self.cdn)

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API + "/"):
            return await handler(request)
        path = request.path[len(API) :]
        resource = request.match_info.route.resource
        route = resource.canonical[len(API) :] if resource is not None else path
        record = RequestRecord(
            method=request.method,
            path=path,
            route=route,
            query=dict(request.query),
            json=None,
            files=[],
            at=time.monotonic(),
            wall=utcnow(),
        )
        self.world.requests.append(record)
        request[RECORD] = record
        headers: dict[str, str] = {}
        try:
            await self._read_body(request, record)
            if not path.startswith(_NO_AUTH_PREFIXES):
                self._check_auth(request)
            rule = self.world.take_rate_limit(request.method, path)
            if rule is not None:
                raise self._rate_limited(rule, route)
            response = await handler(request)
            headers = self._ratelimit_headers(route, remaining=999)
            slow = self.world.take_slow_answer(request.method, path)
            if slow is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), slow.seconds)
        except DiscordHTTPError as exc:
            response = json_response(exc.body(), status=exc.status)
            headers = exc.headers
            record.error_code = exc.code
            if exc.status != 429:
                headers = {**self._ratelimit_headers(route, remaining=999), **headers}
        except web.HTTPMethodNotAllowed:
            self.world.unknown_routes.append(record)
            log.warning(
                "fake_discord: method not allowed %s %s (not implemented by the fake)", request.method, path
            )
            response = json_response({"message": "405: Method Not Allowed", "code": 0}, status=405)
        except Exception as exc:  # a bug in the fake: loud, and 400 rather than 500 so clients don't retry
            log.exception("fake_discord: internal error on %s %s", request.method, path)
            self.world.internal_errors.append((record, exc))
            body = {"message": f"fake_discord internal error: {exc!r}", "code": 0}
            response = json_response(body, status=400)
        for key, value in headers.items():
            response.headers[key] = value
        record.status = response.status
        record.elapsed = time.monotonic() - record.at
        if (
            isinstance(response, web.Response)
            and response.body
            and response.content_type == "application/json"
        ):
            try:
                record.response = json.loads(response.body)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                record.response = None
        if record.status >= 400:
            log.info("fake_discord: %s %s -> %s %s", request.method, path, record.status, record.error_code)
        self.world.pulse.fire()
        return response

    async def _read_body(self, request: web.Request, record: RequestRecord) -> None:
        request[JSON_BODY] = None
        request[UPLOADS] = []
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                name = part.name or ""
                if part.filename is None and name == "payload_json":
                    request[JSON_BODY] = json.loads(await part.text())  # type: ignore[union-attr]
                    continue
                upload = Upload(name, part.filename or name, part.headers.get("Content-Type"))
                while True:
                    chunk = await part.read_chunk(1 << 16)  # type: ignore[union-attr]
                    if not chunk:
                        break
                    upload.size += len(chunk)
                    if upload.chunks is not None:
                        upload.chunks.append(chunk)
                        if upload.size > MAX_STORED_UPLOAD:
                            upload.chunks = None
                request[UPLOADS].append(upload)
                record.files.append(FileInfo(name, upload.filename, upload.size, upload.content_type))
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    request[JSON_BODY] = json.loads(raw)
                except ValueError:
                    raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from None
        record.json = request[JSON_BODY]

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.fake.token}":
            raise DiscordHTTPError(401, 0, "401: Unauthorized")

    @staticmethod
    def _bucket(route: str) -> str:
        return hashlib.sha1(route.encode()).hexdigest()[:32]  # noqa: S324 - an id, not security

    def _ratelimit_headers(self, route: str, *, remaining: int, reset_after: float = 1.0) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self._bucket(route),
        }

    def _rate_limited(self, rule: Any, route: str) -> DiscordHTTPError:
        headers = self._ratelimit_headers(route, remaining=0, reset_after=rule.retry_after)
        headers.update(
            {
                "Retry-After": str(max(1, math.ceil(rule.retry_after))),
                "X-RateLimit-Scope": "global" if rule.is_global else rule.scope,
                "Via": "1.1 google",
            }
        )
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        return DiscordHTTPError(
            429,
            0,
            "You are being rate limited.",
            headers=headers,
            extra={"retry_after": rule.retry_after, "global": rule.is_global},
        )

    async def unknown_route(self, request: web.Request) -> web.Response:
        record = request[RECORD]
        self.world.unknown_routes.append(record)
        log.warning(
            "fake_discord: unknown route %s %s (not implemented by the fake)", request.method, record.path
        )
        raise DiscordHTTPError(404, 0, "404: Not Found")

    # Helpers ---------------------------------------------------------------------------------------------
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

    # Users, application, gateway ------------------------------------------------------------------------
    async def get_me(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        return json_response(payloads.client_user(self.world.bot_user))

    async def get_user(self, request: web.Request) -> web.Response:
        return json_response(payloads.user(self.world.user(request.match_info["user_id"])))

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.application(
                self.world, self.fake.owner, name=self.fake.app_name, flags=self.fake.application_flags
            )
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def create_dm(self, request: web.Request) -> web.Response:
        body = self._json(request)
        try:
            user = self.world.user(body.get("recipient_id"))
        except DiscordHTTPError:
            raise invalid_form("recipient_id", "USER_UNKNOWN", "Unknown user") from None
        return json_response(payloads.channel(self.world.dm_channel_for(user)))

    # Application commands ------------------------------------------------------------------------------
    def _command_scope(self, request: web.Request) -> int | None:
        self._app(request)
        raw = request.match_info.get("guild_id")
        if raw is None:
            return None
        guild = self.world.guilds.get(int(raw)) if raw.isdigit() else None
        assert self.world.bot_user is not None
        if guild is None or self.world.bot_user.id not in guild.members:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        return guild.id

    def _command_json(self, cmd: StoredCommand) -> dict[str, Any]:
        return cmds.normalise_command(cmd.payload, cmd.id, cmd.application_id, cmd.guild_id, cmd.version)

    async def list_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        store = self.world.commands.get(scope, {})
        return json_response([self._command_json(c) for c in store.values()])

    async def bulk_overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body = request[JSON_BODY]
        if not isinstance(body, list):
            raise invalid_form("_", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        for i, data in enumerate(body):
            cmds.validate_command(data, str(i))
        cmds.check_limits(body)
        old = self.world.commands.get(scope, {})
        new: dict[int, StoredCommand] = {}
        for data in body:
            existing = cmds.find_command(old, data["name"], data.get("type", 1))
            cmd_id = existing.id if existing else self.world.snowflake()
            version = existing.version if existing and existing.payload == data else self.world.snowflake()
            new[cmd_id] = StoredCommand(cmd_id, self.world.application_id, data, scope, version)
        self.world.commands[scope] = new
        self.world.command_syncs.append((scope, time.monotonic()))
        return json_response([self._command_json(c) for c in new.values()])

    async def create_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        data = self._json(request)
        cmds.validate_command(data, "")
        store = self.world.commands.setdefault(scope, {})
        existing = cmds.find_command(store, data["name"], data.get("type", 1))
        cmd_id = existing.id if existing else self.world.snowflake()
        store[cmd_id] = cmd = StoredCommand(
            cmd_id, self.world.application_id, data, scope, self.world.snowflake()
        )
        return json_response(self._command_json(cmd), status=200 if existing else 201)

    def _stored(self, request: web.Request) -> tuple[dict[int, StoredCommand], StoredCommand]:
        store = self.world.commands.get(self._command_scope(request), {})
        try:
            return store, store[int(request.match_info["command_id"])]
        except (KeyError, ValueError):
            raise unknown("Application Command") from None

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._command_json(self._stored(request)[1]))

    async def edit_command(self, request: web.Request) -> web.Response:
        _, cmd = self._stored(request)
        data = {**cmd.payload, **self._json(request)}
        cmds.validate_command(data, "")
        cmd.payload, cmd.version = data, self.world.snowflake()
        return json_response(self._command_json(cmd))

    async def delete_command(self, request: web.Request) -> web.Response:
        store, cmd = self._stored(request)
        del store[cmd.id]
        return web.Response(status=204)

    # Interactions ----------------------------------------------------------------------------------------
    async def interaction_callback(self, request: web.Request) -> web.Response:
        record = request[RECORD]
        inter = self.world.interactions.get(int(request.match_info["interaction_id"]))
        if inter is None or inter.token != request.match_info["token"]:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        body = self._json(request)
        cb_type = body.get("type")
        data = body.get("data") or {}
        callback = CallbackRecord(type=cb_type, data=data, files=list(record.files), at=record.at)
        try:
            if inter.response is not None:
                raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
            if record.at - inter.dispatched_at > self.fake.response_window:
                raise DiscordHTTPError(404, 10062, "Unknown interaction")
            result = self._apply_callback(request, inter, cb_type, data)
        except DiscordHTTPError as exc:
            callback.status, callback.error_code = exc.status, exc.code
            inter.rejected.append(callback)
            raise
        callback.status = 200
        inter.response = callback
        if request.query.get("with_response") in ("1", "true", "True"):
            return json_response(result)
        return web.Response(status=204)

    def _apply_callback(
        self, request: web.Request, inter: Interaction, cb_type: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        allowed = {
            PING: {1},
            APPLICATION_COMMAND: {4, 5, 9, 12},
            MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 12},
            AUTOCOMPLETE: {8},
            MODAL_SUBMIT: {4, 5, 6, 7} if inter.source_message is not None else {4, 5},
        }[inter.type]
        if cb_type not in allowed:
            raise invalid_form(
                "type",
                "INTERACTION_CALLBACK_TYPE_INVALID",
                f"Interaction callback type {cb_type} is not valid here",
            )
        result: dict[str, Any] = {
            "interaction": {"id": str(inter.id), "type": inter.type},
        }
        info = result["interaction"]
        via = f"POST /interactions/{{id}}/{{token}}/callback type={cb_type}"
        limit = self.world.upload_limit(inter.channel)
        if cb_type in (4, 5):
            flags = int(data.get("flags") or 0) & INTERACTION_MESSAGE_FLAGS
            if cb_type == 5:
                msg = self._interaction_message(
                    inter, {"flags": flags & FLAG_EPHEMERAL}, {}, via, loading=True
                )
            else:
                new = self._attachments_from_uploads(request, data, limit, inter.channel.id)
                msg = self._interaction_message(inter, {**data, "flags": flags}, new, via)
            inter.original_message_id = msg.id
            info.update(
                {
                    "response_message_id": str(msg.id),
                    "response_message_loading": cb_type == 5,
                    "response_message_ephemeral": msg.ephemeral,
                }
            )
            result["resource"] = {"type": cb_type, "message": payloads.message(self.world, msg)}
        elif cb_type == 7:
            assert inter.source_message is not None
            new = self._attachments_from_uploads(request, data, limit, inter.channel.id)
            self.world.edit_message(inter.source_message, data, new, via)
            result["resource"] = {"type": 7, "message": payloads.message(self.world, inter.source_message)}
        elif cb_type == 9:
            _validate_modal(data)
            inter.modal = data
        elif cb_type == 8:
            choices = data.get("choices") or []
            if len(choices) > 25:
                raise invalid_form("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            inter.autocomplete_choices = choices
        return result

    def _interaction_message(
        self,
        inter: Interaction,
        data: dict[str, Any],
        new: dict[int, Attachment],
        via: str,
        *,
        loading: bool = False,
        followup: bool = False,
    ) -> Message:
        assert self.world.bot_user is not None
        flags = int(data.get("flags") or 0) & INTERACTION_MESSAGE_FLAGS
        if loading:
            flags |= FLAG_LOADING
        meta = interaction_metadata(inter)
        if followup and inter.original_message_id is not None:
            meta["original_response_message_id"] = str(inter.original_message_id)
        msg_type = MESSAGE_DEFAULT
        if inter.command is not None:
            msg_type = MESSAGE_CHAT_INPUT_COMMAND if inter.command.type == 1 else MESSAGE_CONTEXT_MENU_COMMAND
        embeds = data.get("embeds") or ([data["embed"]] if data.get("embed") else [])
        return self.world.create_message(
            inter.channel,
            self.world.bot_user,
            content=str(data.get("content") or ""),
            embeds=embeds,
            components=data.get("components") or [],
            attachments=self._ordered(data, new),
            flags=flags,
            tts=bool(data.get("tts", False)),
            allowed_mentions=data.get("allowed_mentions"),
            poll=data.get("poll"),
            webhook_id=self.world.application_id,
            application_id=self.world.application_id,
            interaction_metadata=meta,
            interaction_id=inter.id,
            type_=msg_type,
            via=via,
            validate=not loading,
        )

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        if request.match_info["app_id"] != str(self.world.application_id):
            raise unknown("Webhook")
        inter = self.world.interactions_by_token.get(request.match_info["token"])
        if inter is None or inter.age > self.fake.token_lifetime:
            raise DiscordHTTPError(401, 50027, "Invalid Webhook Token")
        if inter.response is None:
            raise unknown("Webhook")
        return inter

    def _webhook_message(self, request: web.Request, inter: Interaction) -> Message:
        raw = request.match_info["message_id"]
        mid: int | None
        if raw == "@original":
            mid = inter.original_message_id
        else:
            mid = int(raw) if raw.isdigit() else None
            if mid not in (inter.original_message_id, *inter.followup_ids):
                mid = None
        msg = self.world.messages_by_id.get(mid) if mid is not None else None
        if msg is None or msg.deleted:
            raise unknown("Message")
        return msg

    async def execute_webhook(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        body = self._json(request)
        new = self._attachments_from_uploads(
            request, body, self.world.upload_limit(inter.channel), inter.channel.id
        )
        via = "POST /webhooks/{app}/{token}"
        original = inter.original_message()
        if original is not None and original.loading and not inter.followup_ids:
            # Discord: the first follow-up after a deferred (type 5) response replaces the "thinking" message.
            patch = {
                k: v
                for k, v in body.items()
                if k in ("content", "embeds", "components", "allowed_mentions", "attachments")
            }
            self.world.edit_message(original, patch, new, via)
            msg = original
        else:
            msg = self._interaction_message(inter, body, new, via, followup=True)
            inter.followup_ids.append(msg.id)
        if request.query.get("wait") in ("1", "true", "True"):
            return self._msg(msg)
        return web.Response(status=204)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        return self._msg(self._webhook_message(request, inter))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        msg = self._webhook_message(request, inter)
        body = self._json(request)
        new = self._attachments_from_uploads(
            request, body, self.world.upload_limit(inter.channel), msg.channel_id
        )
        which = "@original" if msg.id == inter.original_message_id else "{id}"
        self.world.edit_message(msg, body, new, f"PATCH /webhooks/{{app}}/{{token}}/messages/{which}")
        return self._msg(msg)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        inter = self._webhook_interaction(request)
        self.world.delete_message(self._webhook_message(request, inter))
        return web.Response(status=204)

    # Channels and messages ------------------------------------------------------------------------------
    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self.world.channel(request.match_info["channel_id"])
        if not channel.is_dm:
            self.world.require_bot_permissions(channel)
        return json_response(payloads.channel(channel))

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self.world.channel(request.match_info["channel_id"])
        self.world.require_bot_permissions(channel, "read_message_history")
        q = request.query
        limit = max(1, min(100, int(q.get("limit", 50))))
        msgs = [
            m for m in self.world.channel_messages.get(channel.id, []) if not m.deleted and not m.ephemeral
        ]
        if "before" in q:
            msgs = [m for m in msgs if m.id < int(q["before"])]
        if "after" in q:
            msgs = [m for m in msgs if m.id > int(q["after"])][:limit]
        if "around" in q:
            pivot = int(q["around"])
            older = [m for m in msgs if m.id <= pivot][-(limit // 2 + 1) :]
            newer = [m for m in msgs if m.id > pivot][: limit - len(older)]
            msgs = older + newer
        msgs = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return json_response([self._seen(m) for m in msgs])

    async def create_message(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        channel = self.world.channel(request.match_info["channel_id"])
        body = self._json(request)
        for up in request[UPLOADS]:
            if up.size > self.world.upload_limit(channel):
                raise DiscordHTTPError(413, 40005, "Request entity too large")
        if channel.is_dm:
            recipient = channel.recipients[0]
            if not recipient.accepts_dms:
                raise DiscordHTTPError(403, 50007, "Cannot send messages to this user")
        else:
            needed = ["send_messages"]
            if request[UPLOADS]:
                needed.append("attach_files")
            if body.get("message_reference"):
                needed.append("read_message_history")
            self.world.require_bot_permissions(channel, *needed)
        nonce = body.get("nonce")
        if isinstance(nonce, str) and len(nonce) > 25:
            raise invalid_form("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self.world.message_with_nonce(channel, self.world.bot_user, nonce)
            if earlier is not None:  # Discord answers with the message already made, and makes no other
                return self._msg(earlier)
        new = self._attachments_from_uploads(request, body, self.world.upload_limit(channel), channel.id)
        embeds = body.get("embeds") or ([body["embed"]] if body.get("embed") else [])
        msg = self.world.create_message(
            channel,
            self.world.bot_user,
            content=str(body.get("content") or ""),
            embeds=embeds,
            components=body.get("components") or [],
            attachments=self._ordered(body, new),
            flags=allowed_message_flags(int(body.get("flags") or 0)),
            tts=bool(body.get("tts", False)),
            nonce=body.get("nonce"),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=body.get("message_reference"),
            sticker_ids=body.get("sticker_ids"),
            poll=body.get("poll"),
            via="POST /channels/{channel_id}/messages",
        )
        return self._msg(msg)

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self.world.channel(request.match_info["channel_id"])
        if not channel.is_dm:
            self.world.require_bot_permissions(channel, "read_message_history")
        msg = self.world.message(channel, request.match_info["message_id"])
        if msg.ephemeral:
            raise unknown("Message")
        return self._msg(msg)

    async def edit_message(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        channel = self.world.channel(request.match_info["channel_id"])
        if not channel.is_dm:
            self.world.require_bot_permissions(channel)
        msg = self.world.message(channel, request.match_info["message_id"])
        body = self._json(request)
        # The bot may edit its own messages, including its non-ephemeral interaction responses (authored by
        # the bot, webhook_id = the application): the way to keep editing them once the token has expired.
        # Ephemeral responses are reachable only through the interaction webhook.
        if msg.ephemeral:
            raise unknown("Message")
        own = msg.author.id == self.world.bot_user.id and msg.webhook_id in (None, self.world.application_id)
        if not own and set(body) - {"flags"}:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        new = self._attachments_from_uploads(request, body, self.world.upload_limit(channel), channel.id)
        self.world.edit_message(msg, body, new, "PATCH /channels/{channel_id}/messages/{message_id}")
        return self._msg(msg)

    async def delete_message(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        channel = self.world.channel(request.match_info["channel_id"])
        msg = self.world.message(channel, request.match_info["message_id"])
        if msg.author.id != self.world.bot_user.id:
            if channel.is_dm:
                raise DiscordHTTPError(403, 50003, "Cannot execute action on a DM channel")
            self.world.require_bot_permissions(channel, "manage_messages")
        self.world.delete_message(msg)
        return web.Response(status=204)

    async def typing(self, request: web.Request) -> web.Response:
        channel = self.world.channel(request.match_info["channel_id"])
        if not channel.is_dm:
            self.world.require_bot_permissions(channel, "send_messages")
        return web.Response(status=204)

    async def add_reaction(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        channel = self.world.channel(request.match_info["channel_id"])
        if not channel.is_dm:
            self.world.require_bot_permissions(channel, "read_message_history", "add_reactions")
        msg = self.world.message(channel, request.match_info["message_id"])
        msg.reactions.setdefault(request.match_info["emoji"], set()).add(self.world.bot_user.id)
        return web.Response(status=204)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        assert self.world.bot_user is not None
        channel = self.world.channel(request.match_info["channel_id"])
        msg = self.world.message(channel, request.match_info["message_id"])
        msg.reactions.get(request.match_info["emoji"], set()).discard(self.world.bot_user.id)
        return web.Response(status=204)

    # Guilds ----------------------------------------------------------------------------------------------
    def _guild(self, request: web.Request) -> Any:
        guild = self.world.guild(request.match_info["guild_id"])
        assert self.world.bot_user is not None
        if self.world.bot_user.id not in guild.members:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = payloads.guild_rest(guild)
        if request.query.get("with_counts") in ("1", "true", "True"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([payloads.channel(c) for c in guild.channels.values() if not c.deleted])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([payloads.role(r) for r in guild.roles.values()])

    async def list_members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        if "members" not in self.fake.privileged_intents:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        limit = max(1, min(1000, int(request.query.get("limit", 1))))
        after = int(request.query.get("after", 0))
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)[:limit]
        return json_response([payloads.member(m) for m in members])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        try:
            member = guild.members[int(request.match_info["user_id"])]
        except (KeyError, ValueError):
            raise unknown("Member") from None
        return json_response(payloads.member(member))

    # CDN -------------------------------------------------------------------------------------------------
    async def cdn(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            att = self.world.attachments[int(m["attachment_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404, text="Not Found")
        path = f"/{m['folder']}/{m['owner_id']}/{m['attachment_id']}/{m['filename']}"
        q = request.query
        if path != self.world.cdn_path(att) or not self.world.check_cdn_signature(
            path, q.get("ex", ""), q.get("is", ""), q.get("hm", "")
        ):
            return web.Response(status=404, text="This content is no longer available.")
        headers = {
            "Content-Type": att.content_type or "application/octet-stream",
            "Cache-Control": "public, max-age=31536000",
            "Last-Modified": dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        return web.Response(body=att.data, headers=headers)


def _validate_modal(data: dict[str, Any]) -> None:
    custom_id = data.get("custom_id")
    if not custom_id or len(str(custom_id)) > 100:
        raise invalid_form("data.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    title = str(data.get("title") or "")
    if not 1 <= len(title) <= 45:
        raise invalid_form("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        raise invalid_form("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    for i, comp in enumerate(components):
        ctype = comp.get("type")
        if ctype == 1:
            children = comp.get("components") or []
            if len(children) != 1 or children[0].get("type") != 4:
                raise invalid_form(
                    f"data.components.{i}",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "An action row in a modal holds exactly one text input",
                )
            child = children[0]
            if len(str(child.get("label") or "")) > 45:
                raise invalid_form(
                    f"data.components.{i}.components.0.label",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 45 or fewer in length.",
                )
        elif ctype == 18:
            if len(str(comp.get("label") or "")) > 45:
                raise invalid_form(
                    f"data.components.{i}.label", "BASE_TYPE_MAX_LENGTH", "Must be 45 or fewer in length."
                )
            if not isinstance(comp.get("component"), dict):
                raise invalid_form(
                    f"data.components.{i}.component", "BASE_TYPE_REQUIRED", "This field is required"
                )
        elif ctype != 10:
            raise invalid_form(
                f"data.components.{i}.type",
                "UNION_TYPE_CHOICES",
                "Modals take action rows, labels and text displays",
            )
        for child in [comp.get("component")] if ctype == 18 else comp.get("components") or []:
            if child and child.get("type") == 4:
                max_length = child.get("max_length", 4000)
                if not 1 <= max_length <= 4000:
                    raise invalid_form(
                        f"data.components.{i}", "NUMBER_TYPE_MAX", "max_length must be between 1 and 4000"
                    )
                if child.get("value") and len(child["value"]) > max_length:
                    raise invalid_form(
                        f"data.components.{i}", "BASE_TYPE_MAX_LENGTH", "value is longer than max_length"
                    )
