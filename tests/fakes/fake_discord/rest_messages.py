"""REST routes of channels and messages: reads, sends (with uploads and nonces), edits, deletes, typing
and the bot's own reactions, with Discord's permission checks."""

from __future__ import annotations

from aiohttp import web

from . import payloads
from .rest_base import UPLOADS, RestBase, json_response
from .state import allowed_message_flags
from .util import DiscordHTTPError, invalid_form, unknown


class RestMessages(RestBase):
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
