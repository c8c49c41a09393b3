#!/usr/bin/env python3
"""Keep the message catalogs in step with the code.

    .venv/bin/python scripts/i18n.py               extract bot/locales/messages.pot, update every catalog
    .venv/bin/python scripts/i18n.py --check       exit 1 if messages.pot or a catalog is out of date
    .venv/bin/python scripts/i18n.py --init xx_YY  start a catalog for a new language

Strings are marked in the code with `_("…")` and `plural("…", "…", n)` from `bot/core/i18n.py`; `babel.cfg`
says which files are read. Updating a catalog adds the new msgids with an empty translation (never a fuzzy
guess: tests/test_i18n.py refuses both) and drops the ones the code no longer uses.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from babel.messages.catalog import Catalog  # noqa: E402 - after the path is set
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.frontend import parse_mapping_cfg  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402

from bot.core.i18n import CATALOGS, DOMAIN, LOCALES_DIR  # noqa: E402

TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "plural": (1, 2)}
COMMENT_TAGS = ("TRANSLATORS:",)
HEADER = "Hailuo Bot's messages. English source strings are the msgids; see CONTRIBUTING.md."


def extract() -> Catalog:
    """Every marked string in the code, as a template catalog."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    template = Catalog(project="hailuo-bot", charset="utf-8", header_comment=f"# {HEADER}", fuzzy=False)
    found = extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    for text, where in asyncio.run(_command_strings()):
        template.add(text, None, [("cogs", 0)], auto_comments=[f"Slash command text: {where}"])
    return template


async def _command_strings() -> list[tuple[str, str]]:
    """The slash commands' descriptions and choice names, read from the loaded cogs (no Discord needed)."""
    from bot.core.settings import Settings
    from bot.discord_side.app import EXTENSIONS, HailuoBot
    from bot.discord_side.translator import command_strings

    bot = HailuoBot(Settings(_env_file=None), engine=None)  # type: ignore[call-arg]  # pydantic's own keyword
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    try:
        return command_strings(bot.tree)
    finally:
        await bot.close()


def po_text(catalog: Catalog) -> str:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=110, sort_output=True, ignore_obsolete=True, include_lineno=False)
    return _without_dates(buffer.getvalue().decode("utf-8"))


def _without_dates(text: str) -> str:
    """The creation and revision dates change on every run; leaving them out keeps diffs to real changes."""
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not line.startswith(('"POT-Creation-Date', '"PO-Revision'))
    )


def catalog_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale)


def updated(locale: str, template: Catalog) -> Catalog:
    path = catalog_path(locale)
    if path.is_file():
        catalog = read_catalog(locale)
    else:
        catalog = Catalog(locale=locale, project="hailuo-bot", charset="utf-8", fuzzy=False)
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=True)
    catalog.obsolete.clear()
    return catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    parser.add_argument("--init", metavar="LOCALE", help="start a catalog for a new language")
    args = parser.parse_args(argv)
    template = extract()
    locales = [*CATALOGS, *([args.init] if args.init else [])]
    wanted = {TEMPLATE: po_text(template)} | {
        catalog_path(lo): po_text(updated(lo, template)) for lo in locales
    }
    stale = [path for path, text in wanted.items() if not path.is_file() or path.read_text("utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run scripts/i18n.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], "utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    missing = {lo: sum(1 for m in updated(lo, template) if m.id and not m.string) for lo in locales}
    for locale, count in missing.items():
        if count:
            print(f"{locale}: {count} message(s) to translate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
