"""`Driving`: what members do that reaches the bot: slash and context-menu commands, button clicks,
select choices, modal submissions, messages, deletions and reactions."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from . import commands as cmds
from . import payloads
from .fake_base import FakeBase, FileSpec
from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    base_payload,
    modal_submit_components,
)
from .model import Channel, Guild, Member, Message, Role, StoredCommand, User, walk_components
from .sync import on_loop

if TYPE_CHECKING:
    from .fake import FakeDiscord


class Driving(FakeBase):
    def _guild_and_channel(
        self, guild: Guild | None, channel: Channel | None, user: User, dm: bool
    ) -> tuple[Guild | None, Channel]:
        if dm:
            return None, self.world.dm_channel_for(user)
        if channel is None:
            guild = guild or self.guild
            channel = self.channel if guild is self.guild else next(iter(guild.channels.values()))
        if channel.is_dm:
            return None, channel
        return self.world.guilds[channel.guild_id], channel  # type: ignore[index]

    def _find_command(self, name: str, ctype: int, guild: Guild | None) -> StoredCommand:
        for scope in ([guild.id] if guild else []) + [None]:
            cmd = cmds.find_command(self.world.commands.get(scope, {}), name, ctype)
            if cmd is not None:
                return cmd
        synced = sorted(c.name for store in self.world.commands.values() for c in store.values())
        raise LookupError(f"command {name!r} (type {ctype}) is not synced; synced commands: {synced}")

    def _dispatch(self, data: dict[str, Any] | None, **fields: Any) -> Interaction:
        """Make the Interaction of `fields` (itype, user, channel, guild, ...) and send INTERACTION_CREATE."""
        fake = cast("FakeDiscord", self)  # a Driving is only ever a part of a FakeDiscord
        inter = Interaction(fake, **fields)
        inter.payload = base_payload(fake, inter, data)
        self.world.interactions[inter.id] = inter
        self.world.interactions_by_token[inter.token] = inter
        inter.dispatched_at = time.monotonic()
        guild_id = inter.guild.id if inter.guild is not None else None
        self.gateway.dispatch("INTERACTION_CREATE", inter.payload, guild_id=guild_id)
        return inter

    def _invoke(
        self, cmd: StoredCommand, data: dict[str, Any], user: User, channel: Channel, guild: Guild | None
    ) -> Interaction:
        """Dispatch an application-command interaction of `cmd` (a guild command names its guild)."""
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        return self._dispatch(
            data, itype=APPLICATION_COMMAND, user=user, channel=channel, guild=guild, command=cmd
        )

    def _where(self, message: Message) -> tuple[Channel, Guild | None]:
        """The channel of `message` and its guild (None in DMs)."""
        channel = self.world.channels[message.channel_id]
        return channel, self.world.guilds.get(channel.guild_id) if channel.guild_id else None

    @on_loop
    def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: User | None = None,
        guild: Guild | None = None,
        channel: Channel | None = None,
        attachments: dict[str, FileSpec] | None = None,
        subcommand: str | None = None,
        dm: bool = False,
        strict: bool = True,
    ) -> Interaction:
        """Invoke `/name` as a Discord client would, with options typed per the synced schema.

        `options`: name -> value (str/int/float/bool, User/Role/Channel for those types, an Attachment or
        (filename, bytes[, content_type]) for attachment options). `attachments` is the same for attachment
        options, kept separate for readability. `subcommand` is "sub" or "group sub". `strict` applies the
        client's own checks (required, choices, max_length) and raises ValueError when they would fail."""
        user = user or self.member
        guild, channel = self._guild_and_channel(guild, channel, user, dm)
        cmd = self._find_command(name, cmds.CHAT_INPUT, guild)
        path, schema = cmds.leaf_schema(cmd, subcommand)
        given = dict(options or {})
        given.update(attachments or {})
        by_name = {o["name"]: o for o in schema}
        unknown = set(given) - set(by_name)
        if unknown:
            raise ValueError(f"/{name} has no options {sorted(unknown)}; it has {sorted(by_name)}")
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        for opt in schema:
            if opt["name"] not in given:
                if strict and opt.get("required"):
                    raise ValueError(f"/{name}: option {opt['name']!r} is required")
                continue
            value = given[opt["name"]]
            leaf.append(
                {
                    "name": opt["name"],
                    "type": opt["type"],
                    "value": self._option_value(opt, value, resolved, guild, strict),
                }
            )
        options_payload: list[dict[str, Any]] = leaf
        for i, part in enumerate(reversed(path)):
            kind = cmds.SUB_COMMAND if i == 0 else cmds.SUB_COMMAND_GROUP
            options_payload = [{"name": part, "type": kind, "options": options_payload}]
        data: dict[str, Any] = {"id": str(cmd.id), "name": cmd.name, "type": cmds.CHAT_INPUT}
        if options_payload:
            data["options"] = options_payload
        if resolved:
            data["resolved"] = resolved
        return self._invoke(cmd, data, user, channel, guild)

    def _option_value(
        self,
        opt: dict[str, Any],
        value: Any,
        resolved: dict[str, dict[str, Any]],
        guild: Guild | None,
        strict: bool,
    ) -> Any:
        otype = opt["type"]
        if otype == cmds.ATTACHMENT:
            att = self._as_attachment(value, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment(att)
            return str(att.id)
        if otype in (cmds.USER_OPT, cmds.MENTIONABLE) and isinstance(value, User | Member):
            user = value.user if isinstance(value, Member) else value
            resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
            member = guild.members.get(user.id) if guild else None
            if member is not None:
                perms = guild.base_permissions(user.id) if guild else 0
                resolved.setdefault("members", {})[str(user.id)] = payloads.member(
                    member, with_user=False, permissions=perms
                )
            return str(user.id)
        if otype in (cmds.ROLE, cmds.MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
            return str(value.id)
        if otype == cmds.CHANNEL and isinstance(value, Channel):
            data = payloads.channel(value)
            data["permissions"] = str(self.world.bot_permissions(value))
            resolved.setdefault("channels", {})[str(value.id)] = data
            return str(value.id)
        if otype in (cmds.USER_OPT, cmds.ROLE, cmds.CHANNEL, cmds.MENTIONABLE):
            raise ValueError(f"option {opt['name']}: pass a User/Member, Role or Channel object")
        return cmds.coerce_option(opt, value, strict=strict)

    @on_loop
    def context_menu(self, name: str, target: Message | User, *, user: User | None = None) -> Interaction:
        """Invoke a message (target is a Message) or user (target is a User) context-menu command."""
        user = user or self.member
        if isinstance(target, Message):
            channel, guild = self._where(target)
            cmd = self._find_command(name, cmds.MESSAGE, guild)
            resolved = {"messages": {str(target.id): payloads.message(self.world, target)}}
            target_id = target.id
        else:
            guild, channel = self.guild, self.channel
            cmd = self._find_command(name, cmds.USER, guild)
            resolved = {"users": {str(target.id): payloads.user(target)}}
            member = guild.members.get(target.id)
            if member is not None:
                resolved["members"] = {str(target.id): payloads.member(member, with_user=False)}
            target_id = target.id
        data: dict[str, Any] = {
            "id": str(cmd.id),
            "name": cmd.name,
            "type": cmd.type,
            "target_id": str(target_id),
            "resolved": resolved,
        }
        return self._invoke(cmd, data, user, channel, guild)

    @on_loop
    def click(self, message: Message, custom_id: str, *, user: User | None = None) -> Interaction:
        """Press the button `custom_id` on `message` (type 3 component interaction)."""
        comp = self._component(message, custom_id)
        if comp.get("type") != 2:
            raise ValueError(f"{custom_id!r} is not a button (type {comp.get('type')})")
        return self._component_interaction(message, comp, {"custom_id": custom_id, "component_type": 2}, user)

    @on_loop
    def select(
        self, message: Message, custom_id: str, values: list[str], *, user: User | None = None
    ) -> Interaction:
        """Choose `values` in the string select `custom_id` on `message`."""
        comp = self._component(message, custom_id)
        data = {
            "custom_id": custom_id,
            "component_type": comp.get("type", 3),
            "values": [str(v) for v in values],
        }
        return self._component_interaction(message, comp, data, user)

    def _component(self, message: Message, custom_id: str) -> dict[str, Any]:
        for comp in walk_components(message.components):
            if comp.get("custom_id") == custom_id:
                if comp.get("disabled"):
                    raise ValueError(f"component {custom_id!r} is disabled; a Discord client cannot use it")
                return comp
        raise ValueError(
            f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids()}"
        )

    def _component_interaction(
        self, message: Message, comp: dict[str, Any], data: dict[str, Any], user: User | None
    ) -> Interaction:
        if message.deleted:
            raise ValueError("the message was deleted")
        if comp.get("id") is not None:
            data["id"] = comp["id"]
        user = user or self.member
        channel, guild = self._where(message)
        return self._dispatch(
            data, itype=MESSAGE_COMPONENT, user=user, channel=channel, guild=guild, source_message=message
        )

    @on_loop
    def submit_modal(
        self,
        source: Interaction | str,
        values: dict[str, Any],
        *,
        user: User | None = None,
        strict: bool = True,
    ) -> Interaction:
        """Submit the modal the bot opened in answer to `source` (an Interaction, or the modal's custom_id:
        the latest modal with it), filling inputs by custom_id. See `modal_submit_components` for values."""
        if isinstance(source, str):
            opened = [
                i for i in self.world.interactions.values() if i.modal and i.modal.get("custom_id") == source
            ]
            if not opened:
                raise LookupError(f"no modal with custom_id {source!r} was opened")
            source = opened[-1]
        if source.modal is None:
            kind = source.response.type if source.response else "no response yet"
            raise ValueError(f"{source!r} was not answered with a modal (response: {kind})")
        components, resolved = modal_submit_components(
            source.modal, values, strict=strict, upload=lambda s: self._as_attachment(s, ephemeral=True)
        )
        data: dict[str, Any] = {"custom_id": source.modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        return self._dispatch(
            data,
            itype=MODAL_SUBMIT,
            user=user or source.user,
            channel=source.channel,
            guild=source.guild,
            source_message=source.source_message,
            parent=source,
        )

    @on_loop
    def post_message(
        self,
        channel: Channel | None,
        author: User | Member,
        content: str = "",
        *,
        mentions: Iterable[User] = (),
        reference: Message | None = None,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
    ) -> Message:
        """A user posts a message (dispatched as MESSAGE_CREATE). `mentions` not already in `content` are
        prepended as <@id>; `reference` makes it a reply; `attachments` are (filename, bytes[, type])."""
        channel = channel or self.channel
        author = author.user if isinstance(author, Member) else author
        prefix = " ".join(
            u.mention for u in mentions if u.mention not in content and f"<@!{u.id}>" not in content
        )
        text = f"{prefix} {content}".strip() if prefix else content
        ref = None
        if reference is not None:
            ref = {"type": 0, "message_id": str(reference.id), "channel_id": str(reference.channel_id)}
            if reference.guild_id:
                ref["guild_id"] = str(reference.guild_id)
        files = [self._as_attachment(a) for a in attachments]
        return self.world.create_message(
            channel,
            author,
            content=text,
            attachments=files,
            embeds=embeds,
            message_reference=ref,
            via="user",
            validate=True,
        )

    @on_loop
    def delete_message(self, message: Message) -> None:
        """A user/moderator deletes `message` (MESSAGE_DELETE is dispatched)."""
        self.world.delete_message(message)

    @on_loop
    def react(self, message: Message, emoji: str, *, user: User | None = None) -> None:
        user = user or self.member
        message.reactions.setdefault(emoji, set()).add(user.id)
        if self.gateway.live_for(message.guild_id):
            data = {
                "user_id": str(user.id), "channel_id": str(message.channel_id), "message_id": str(message.id),
                "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0,
            }  # fmt: skip
            if message.guild_id:
                data["guild_id"] = str(message.guild_id)
            self.gateway.dispatch("MESSAGE_REACTION_ADD", data, guild_id=message.guild_id)
