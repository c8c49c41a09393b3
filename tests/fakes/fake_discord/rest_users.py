"""REST routes of users, the application, the gateway URL and DM channels."""

from __future__ import annotations

from aiohttp import web

from . import payloads
from .rest_base import RestBase, json_response
from .util import DiscordHTTPError, invalid_form


class RestUsers(RestBase):
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
