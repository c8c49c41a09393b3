"""REST routes of interactions: the callback (with its 3 s window and single acknowledgement) and the
interaction webhook (follow-ups, @original and follow-up reads, edits and deletes while the token lives)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

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
from .model import Attachment, CallbackRecord, Message
from .rest_base import RECORD, RestBase, json_response
from .state import MESSAGE_CHAT_INPUT_COMMAND, MESSAGE_CONTEXT_MENU_COMMAND, MESSAGE_DEFAULT
from .util import (
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    DiscordHTTPError,
    invalid_form,
    unknown,
)

INTERACTION_MESSAGE_FLAGS = (
    FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
)


class RestInteractions(RestBase):
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
