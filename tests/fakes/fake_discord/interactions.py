"""Interactions: the test-facing `Interaction` handle and builders for the INTERACTION_CREATE payloads
a Discord client would cause (slash commands, context menus, button clicks, selects, modal submits)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import payloads
from .model import CallbackRecord, Channel, Guild, Message, StoredCommand, User, walk_components
from .sync import on_loop, waitable

if TYPE_CHECKING:
    import asyncio

    from .fake import FakeDiscord

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
CALLBACK_NAMES = {
    1: "PONG",
    4: "CHANNEL_MESSAGE_WITH_SOURCE",
    5: "DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE",
    6: "DEFERRED_UPDATE_MESSAGE",
    7: "UPDATE_MESSAGE",
    8: "APPLICATION_COMMAND_AUTOCOMPLETE_RESULT",
    9: "MODAL",
    12: "LAUNCH_ACTIVITY",
}


class Interaction:
    """One interaction the fake dispatched, and everything the bot did with it.

    Attributes: `id`, `token`, `type`, `payload` (the INTERACTION_CREATE data sent), `user`, `channel`,
    `guild`, `command`, `response` (the accepted initial callback, a `CallbackRecord`), `rejected`
    (callbacks refused with 40060/10062), `modal` (the modal data if the response was type 9),
    `source_message` (for component/modal-from-component interactions).
    """

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        itype: int,
        user: User,
        channel: Channel,
        guild: Guild | None,
        command: StoredCommand | None = None,
        source_message: Message | None = None,
        parent: Interaction | None = None,
    ) -> None:
        self._fake = fake
        self.id: int = fake.world.snowflake()
        self.token: str = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        self.type = itype
        self.user = user
        self.channel = channel
        self.guild = guild
        self.command = command
        self.source_message = source_message
        self.parent = parent
        self.payload: dict[str, Any] = {}
        self.dispatched_at: float = 0.0
        self.response: CallbackRecord | None = None
        self.rejected: list[CallbackRecord] = []
        self.original_message_id: int | None = source_message.id if source_message is not None else None
        self.followup_ids: list[int] = []
        self.modal: dict[str, Any] | None = None
        self.autocomplete_choices: list[dict[str, Any]] | None = None

    def _fake_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._fake._fake_loop()

    # State ---------------------------------------------------------------------------------------------
    @property
    def responded(self) -> bool:
        return self.response is not None

    @property
    def response_time(self) -> float | None:
        """Seconds from dispatch to the accepted initial callback."""
        return None if self.response is None else self.response.at - self.dispatched_at

    @property
    def age(self) -> float:
        return time.monotonic() - self.dispatched_at

    @property
    def token_expired(self) -> bool:
        return self.age > self._fake.token_lifetime

    @property
    def ephemeral(self) -> bool:
        return self.response is not None and self.response.ephemeral

    @on_loop
    def original_message(self) -> Message | None:
        """The response message (`@original`) in its current state (deferred, edited, deleted...)."""
        if self.original_message_id is None:
            return None
        return self._fake.world.messages_by_id.get(self.original_message_id)

    @property
    def followups(self) -> list[Message]:
        msgs = self._fake.world.messages_by_id
        return [msgs[i] for i in list(self.followup_ids) if i in msgs]

    def messages(self) -> list[Message]:
        """Original response (if any) followed by the follow-ups."""
        original = self.original_message()
        return ([original] if original is not None else []) + self.followups

    # Waiting -------------------------------------------------------------------------------------------
    @waitable
    async def wait_response(self, timeout: float = 3.0) -> CallbackRecord:
        """Wait for the initial callback (type, data, flags incl. ephemeral 64, files)."""
        return await self._fake._wait_until(
            lambda: self.response,
            timeout,
            f"the initial response to interaction {self.id} ({self.describe()})",
        )

    @waitable
    async def wait_original(
        self, predicate: Callable[[Message], Any] | None = None, timeout: float = 10.0
    ) -> Message:
        """Wait until the original response message exists (and satisfies `predicate`)."""

        def check() -> Message | None:
            msg = self.original_message()
            if msg is None or (predicate is not None and not predicate(msg)):
                return None
            return msg

        return await self._fake._wait_until(check, timeout, f"the original response of {self.describe()}")

    @waitable
    async def wait_followup(
        self,
        predicate: Callable[[Message], Any] | None = None,
        timeout: float = 10.0,
        *,
        index: int | None = None,
    ) -> Message:
        """Wait for a follow-up message (the first matching `predicate`, or number `index`)."""

        def check() -> Message | None:
            found = self.followups
            if index is not None:
                return found[index] if len(found) > index else None
            return next((m for m in found if predicate is None or predicate(m)), None)

        return await self._fake._wait_until(check, timeout, f"a follow-up of {self.describe()}")

    def describe(self) -> str:
        if self.command is not None:
            return (
                f"/{self.command.name}" if self.command.type == 1 else f"context menu {self.command.name!r}"
            )
        return {MESSAGE_COMPONENT: "component", MODAL_SUBMIT: "modal submit"}.get(self.type, str(self.type))

    def __repr__(self) -> str:
        status = CALLBACK_NAMES.get(self.response.type, "?") if self.response else "unanswered"
        return f"<Interaction {self.id} {self.describe()} by {self.user.username}: {status}>"


# Payload builders -------------------------------------------------------------------------------------------
def base_payload(fake: FakeDiscord, inter: Interaction, data: dict[str, Any] | None) -> dict[str, Any]:
    world = fake.world
    channel, guild, user = inter.channel, inter.guild, inter.user
    payload: dict[str, Any] = {
        "id": str(inter.id),
        "application_id": str(world.application_id),
        "type": inter.type,
        "token": inter.token,
        "version": 1,
        "locale": user.locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": world.upload_limit(channel),
        "app_permissions": str(world.bot_permissions(channel)),
        "channel_id": str(channel.id),
        "authorizing_integration_owners": {"0": str(guild.id)} if guild else {"1": str(user.id)},
        "context": 0 if guild else 1,
    }
    if data is not None:
        payload["data"] = data
    if guild is not None:
        user_perms = guild.permissions_in(channel, user.id)
        channel_data = payloads.channel(channel)
        channel_data["permissions"] = str(user_perms)
        payload["channel"] = channel_data
        payload["guild_id"] = str(guild.id)
        payload["guild"] = {"id": str(guild.id), "locale": guild.locale, "features": list(guild.features)}
        payload["guild_locale"] = guild.locale
        member = guild.members.get(user.id)
        if member is None:
            raise ValueError(f"{user!r} is not a member of {guild!r}; add_member() first")
        payload["member"] = payloads.member(member, permissions=user_perms)
    else:
        channel_data = payloads.channel(channel)
        channel_data["permissions"] = str(world.bot_permissions(channel))
        payload["channel"] = channel_data
        payload["user"] = payloads.user(user)
    if inter.source_message is not None:
        payload["message"] = payloads.message(world, inter.source_message)
    return payload


def interaction_metadata(inter: Interaction) -> dict[str, Any]:
    """The `interaction_metadata` of messages created by responding to `inter`."""
    meta: dict[str, Any] = {
        "id": str(inter.id),
        "type": inter.type,
        "user": payloads.user(inter.user),
        "authorizing_integration_owners": (
            {"0": str(inter.guild.id)} if inter.guild else {"1": str(inter.user.id)}
        ),
    }
    if inter.command is not None:
        meta["name"] = inter.command.name
        meta["command_type"] = inter.command.type
        target = inter.payload.get("data", {}).get("target_id")
        if inter.command.type == 3 and target:
            meta["target_message_id"] = target
    if inter.type == MESSAGE_COMPONENT and inter.source_message is not None:
        meta["interacted_message_id"] = str(inter.source_message.id)
    if inter.type == MODAL_SUBMIT and inter.parent is not None:
        meta["triggering_interaction_metadata"] = interaction_metadata(inter.parent)
    return meta


def modal_submit_components(
    modal: dict[str, Any], values: dict[str, Any], *, strict: bool, upload: Callable[[Any], Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Mirror the modal the bot sent, filled with `values` (custom_id -> value), as Discord submits it.

    Text inputs take str; selects / checkbox groups a list of str; radio groups a str; checkboxes a bool;
    file uploads a list of (filename, bytes[, content_type]) tuples or registered Attachments.
    Returns (components, resolved)."""
    resolved: dict[str, Any] = {}
    used: set[str] = set()
    counter = iter(range(1, 1000))

    def submit(child: dict[str, Any]) -> dict[str, Any]:
        ctype = child.get("type")
        custom_id = child.get("custom_id")
        out: dict[str, Any] = {"type": ctype, "id": child.get("id") or next(counter)}
        if custom_id is not None:
            out["custom_id"] = custom_id
        given = values.get(custom_id, _MISSING) if custom_id else _MISSING
        if given is not _MISSING:
            used.add(custom_id)  # type: ignore[arg-type]
        required = child.get("required", True)
        if ctype == 4:  # text input
            value = child.get("value") or "" if given is _MISSING else str(given)
            if strict:
                if required and not value:
                    raise ValueError(f"modal text input {custom_id!r} is required")
                if value and len(value) > child.get("max_length", 4000):
                    raise ValueError(
                        f"modal text input {custom_id!r}: over max_length {child.get('max_length')}"
                    )
                if value and len(value) < child.get("min_length", 0):
                    raise ValueError(
                        f"modal text input {custom_id!r}: under min_length {child.get('min_length')}"
                    )
            out["value"] = value
        elif ctype in (3, 5, 6, 7, 8, 22):  # selects, checkbox group
            if given is _MISSING:
                given = [o["value"] for o in child.get("options", []) if o.get("default")]
            out["values"] = [str(v) for v in given]
            if strict and ctype == 3:
                allowed = {o["value"] for o in child.get("options", [])}
                bad = [v for v in out["values"] if v not in allowed]
                if bad:
                    raise ValueError(
                        f"modal select {custom_id!r}: {bad} not among the options {sorted(allowed)}"
                    )
        elif ctype == 19:  # file upload
            atts = [upload(item) for item in ([] if given is _MISSING else given)]
            out["values"] = [str(a.id) for a in atts]
            for att in atts:
                resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment(att)
            if strict and required and not atts:
                raise ValueError(f"modal file upload {custom_id!r} is required")
        elif ctype == 21:  # radio group
            if given is _MISSING:
                given = next((o["value"] for o in child.get("options", []) if o.get("default")), None)
            out["value"] = given
        elif ctype == 23:  # checkbox
            out["value"] = bool(child.get("default", False) if given is _MISSING else given)
        elif ctype == 10:
            out["content"] = child.get("content", "")
        return out

    components: list[dict[str, Any]] = []
    for comp in modal.get("components", []):
        ctype = comp.get("type")
        if ctype == 1:
            components.append(
                {
                    "type": 1,
                    "id": comp.get("id") or next(counter),
                    "components": [submit(c) for c in comp.get("components", [])],
                }
            )
        elif ctype == 18:
            components.append(
                {"type": 18, "id": comp.get("id") or next(counter), "component": submit(comp["component"])}
            )
        elif ctype == 10:
            components.append(submit(comp))
    unknown = set(values) - used
    if unknown:
        ids = [c.get("custom_id") for c in walk_components(modal.get("components", [])) if c.get("custom_id")]
        raise ValueError(f"modal has no inputs {sorted(unknown)}; its custom_ids are {ids}")
    return components, resolved


_MISSING: Any = object()
