"""Slash commands in the member's language: descriptions, choice names and context-menu names.

Command and option *names* stay English in every language: they are what members type, what the docs and
other members quote, and Discord matches a localized name only in that locale. What a member reads in the
command picker (descriptions, the names of choices, the "Animate image" menu entry) is localized from the
same catalogs as every other text, with the English string as the msgid. `scripts/i18n.py` extracts these
strings by loading the cogs and walking the command tree (`command_strings`), so none is forgotten.
"""

from __future__ import annotations

import re

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from ..core.i18n import CATALOGS, DISCORD_LOCALES, translations_for

KEPT_ENGLISH = frozenset({Where.group_name, Where.parameter_name})  # and slash command names (below)


class CommandTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContext,
    ) -> str | None:
        return translate(string.message, locale.value, context.location, context.data)


def translate(message: str, locale: str, where: Where, data: object = None) -> str | None:
    """The localized text, or None (Discord then shows the English one)."""
    catalog = DISCORD_LOCALES.get(locale)
    if catalog is None or catalog not in CATALOGS or where in KEPT_ENGLISH:
        return None
    if where == Where.command_name and not _is_context_menu(data):
        return None
    translated = translations_for(catalog).gettext(message)
    return translated if translated != message else None


def _is_context_menu(data: object) -> bool:
    return isinstance(data, app_commands.ContextMenu)


def command_strings(tree: app_commands.CommandTree) -> list[tuple[str, str]]:
    """(text, where it is used) for every string of the tree a member reads, in the tree's order."""
    found: list[tuple[str, str]] = []

    def walk(command: app_commands.Command | app_commands.Group, path: str) -> None:
        found.append((command.description, f"/{path}"))
        if isinstance(command, app_commands.Group):
            for child in command.commands:
                walk(child, f"{path} {child.name}")
            return
        for param in command.parameters:
            found.append((param.description, f"/{path} {param.name}"))
            found.extend((choice.name, f"/{path} {param.name} (choice)") for choice in param.choices)

    for command in tree.get_commands():
        if isinstance(command, app_commands.ContextMenu):
            found.append((command.name, "context menu"))
        else:
            walk(command, command.name)
    return [(text, where) for text, where in found if _readable(text)]


def _readable(text: str) -> bool:
    """Words to translate, not a name or a code: "768P", "768P · 6 s" and the models stay as they are."""
    return bool(re.search("[a-z]{3}", text)) and not text.startswith("Hailuo")
