"""Keep Discord's copy of the slash commands equal to the bot's, with one request when nothing changed.

Discord limits how often commands may be registered (a bulk overwrite per scope counts against a daily
limit), so a start must not re-register them every time. What the bot last registered is remembered in the
store: the hash of the payload it sent and Discord's answer (command ids and versions). At start:

- nothing remembered for this scope: register (one PUT);
- otherwise one GET: if the bot's payload hash and Discord's ids and versions are what was remembered,
  nothing is sent; if either differs (a new version of the bot, or someone changed or removed the commands
  on Discord's side), register (one PUT).

`python -m bot sync` forces the PUT. Every failure becomes one sentence that says what to do (`failure_text`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from ..core.store import Store


@dataclass(frozen=True)
class SyncResult:
    registered: bool  # a PUT was sent
    names: tuple[str, ...]
    guild_id: int | None

    @property
    def where(self) -> str:
        return f"server {self.guild_id}" if self.guild_id else "every server (global commands)"

    def describe(self) -> str:
        count = f"{len(self.names)} slash command(s)"
        if self.registered:
            return f"registered {count} in {self.where}: {', '.join(self.names) or 'none'}"
        return f"{count} in {self.where} are up to date with Discord (nothing registered)"


def state_key(guild_id: int | None) -> str:
    return f"commands:{guild_id or 'global'}"


def payload_hash(payload: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def remote_fingerprint(commands: list[dict[str, Any]]) -> list[list[str]]:
    """What identifies Discord's copy: each command's id, version (changes on every edit) and name."""
    return sorted([str(c.get("id")), str(c.get("version")), str(c.get("name"))] for c in commands)


async def tree_payload(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> list[dict]:
    """Exactly what `CommandTree.sync` would send (translations included)."""
    commands = tree._get_all_commands(guild=guild)
    if tree.translator is not None:
        return [await c.get_translated_payload(tree, tree.translator) for c in commands]
    return [c.to_dict(tree) for c in commands]


async def ensure_synced(
    client: discord.Client,
    tree: app_commands.CommandTree,
    store: Store | None,
    guild_id: int | None,
    *,
    force: bool = False,
) -> SyncResult:
    """Register the tree's commands for `guild_id` (None: globally) unless Discord already has them."""
    app_id = client.application_id
    if app_id is None:
        raise app_commands.MissingApplicationID
    http = client.http
    guild = discord.Object(guild_id) if guild_id else None
    payload = await tree_payload(tree, guild)
    digest = payload_hash(payload)
    key = state_key(guild_id)
    remembered = await store.get_state(key) if store is not None else None
    if not force and remembered and remembered.get("payload") == digest:
        remote = await (
            http.get_guild_commands(app_id, guild_id) if guild_id else http.get_global_commands(app_id)
        )
        if remembered.get("discord") == remote_fingerprint(remote):  # type: ignore[arg-type]  # discord.py's TypedDicts are dicts
            return SyncResult(False, tuple(sorted(str(c["name"]) for c in remote)), guild_id)
    if guild_id:
        data = await http.bulk_upsert_guild_commands(app_id, guild_id, payload=payload)
    else:
        data = await http.bulk_upsert_global_commands(app_id, payload=payload)
    if store is not None:
        await store.set_state(key, {"payload": digest, "discord": remote_fingerprint(data)})  # type: ignore[arg-type]  # as above
    return SyncResult(True, tuple(sorted(str(c["name"]) for c in data)), guild_id)


def failure_text(exc: BaseException, guild_id: int | None) -> str:
    """One sentence (two at most) for a failed sync, with the fix."""
    invite = f"python3 scripts/start.py invite{f' --guild {guild_id}' if guild_id else ''}"
    if isinstance(exc, app_commands.MissingApplicationID):
        return "Discord did not say which application this token belongs to; run check --online."
    if isinstance(exc, discord.Forbidden | discord.NotFound) and guild_id:
        return (
            f"The bot is not in server {guild_id}, or {guild_id} is not a server id: open the invite link "
            f"first ({invite}), then try again. (Server id: Developer Mode on, right-click the server → "
            "Copy Server ID.)"
        )
    if isinstance(exc, discord.Forbidden):
        return (
            "Discord refused to register the commands (403): the application may lack the "
            f"applications.commands scope; open the invite link again ({invite})."
        )
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        return (
            "Discord's limit on registering commands is reached for today; the commands already there keep "
            "working, and the next start tries again."
        )
    if isinstance(exc, discord.HTTPException) and exc.status == 400:
        return f"Discord refused the command definitions (400): {exc.text[:300]}. Please report it as a bug."
    if isinstance(exc, discord.HTTPException):
        return f"Discord answered HTTP {exc.status} while registering the commands; try again in a minute."
    return f"Registering the commands failed ({type(exc).__name__}); try again in a minute."
