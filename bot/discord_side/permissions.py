"""Who counts as a moderator: Manage Server (or Administrator), or the server's configured moderator role.

`default_permissions` on a command is only a hint to Discord (server admins can override it per command,
and a crafted interaction ignores it), so every moderator command also checks at run time here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from ..core.i18n import _
from .app import UserFacingCheck

if TYPE_CHECKING:
    from ..core.store import Store

NOT_MODERATOR = _(
    "Only moderators can use this command: it needs the Manage Server permission or this server's "
    "moderator role."
)


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """The member's roles (without @everyone); a plain User (DMs, departed members) has none."""
    return tuple(role.id for role in getattr(user, "roles", ()) if not role.is_default())


async def is_moderator(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        return False
    perms = interaction.permissions
    if perms.administrator or perms.manage_guild:
        return True
    store: Store = interaction.client.store  # type: ignore[attr-defined]  # the client is HailuoBot
    role_id = (await store.guild_settings(interaction.guild_id)).mod_role_id
    return bool(role_id) and role_id in role_ids(interaction.user)


async def require_moderator(interaction: discord.Interaction) -> bool:
    """App-command check: True for moderators, else one sentence for the member (via the tree on_error)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    if not await is_moderator(interaction):
        raise UserFacingCheck(NOT_MODERATOR)
    return True


moderator_only = app_commands.check(require_moderator)
