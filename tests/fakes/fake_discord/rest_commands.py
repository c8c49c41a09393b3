"""REST routes of application commands, global and per guild: list, bulk overwrite, create, get, edit,
delete, validated as Discord validates them."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from . import commands as cmds
from .model import StoredCommand
from .rest_base import JSON_BODY, RestBase, json_response
from .util import DiscordHTTPError, invalid_form, unknown


class RestCommands(RestBase):
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
