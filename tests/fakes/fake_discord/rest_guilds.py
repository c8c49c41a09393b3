"""REST routes of guilds the bot is in: the guild, its channels, roles and members."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import payloads
from .rest_base import RestBase, json_response
from .util import DiscordHTTPError, unknown


class RestGuilds(RestBase):
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
