"""REST API under /api/v10 (and the CDN), as aiohttp routes, with Discord's status codes and error bodies.

This module is the plumbing: the route table, the middleware that records every request in
`world.requests`, reads bodies and uploads, checks the token and answers 429s and late answers on demand.
Unknown routes answer 404 and are logged and recorded in `world.unknown_routes`, so a route discord.py
needs but the fake lacks is visible at once. The handlers live in the route groups `RestApi` is composed
of: rest_users.py, rest_commands.py, rest_interactions.py, rest_messages.py, rest_guilds.py, rest_cdn.py
(over rest_base.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from typing import Any

from aiohttp import web

from .model import FileInfo, RequestRecord
from .rest_base import API, JSON_BODY, MAX_STORED_UPLOAD, RECORD, UPLOADS, Upload, json_response
from .rest_cdn import RestCdn
from .rest_commands import RestCommands
from .rest_guilds import RestGuilds
from .rest_interactions import RestInteractions
from .rest_messages import RestMessages
from .rest_users import RestUsers
from .util import DiscordHTTPError, utcnow

log = logging.getLogger("fake_discord")
_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/")


class RestApi(RestUsers, RestCommands, RestInteractions, RestMessages, RestGuilds, RestCdn):
    """The REST API and CDN of one fake: `install` puts its routes and middleware on an aiohttp app."""

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
