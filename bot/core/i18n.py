"""Translatable text, Discord-free: the core says *what* to tell a member; the reader's language decides how.

The core returns `Text` (built with `_` or `plural`) in refusals and errors; only the Discord layer turns it
into a string, with `render(text, locale)` and the reader's locale. English source strings are the msgids,
so code reads naturally; the catalogs are gettext `.po` files in `bot/locales/<catalog>/LC_MESSAGES/`,
compiled in memory by Babel when first used (no binary `.mo` files in the repository).

Parameters are formatted for the locale when rendered: numbers with the locale's digits grouping, `Money`
and `Duration` with Babel, and a parameter that is itself a `Text` is rendered in the same language. Strings
are inserted as they are (Novita's failure reason is quoted exactly as Novita wrote it).

Text the core stores for later display (a job's error) is stored with `dumps` (msgid + parameters as
JSON) and read back with `loads`, so a card edited after a restart still speaks its reader's language.
Logs and the command line use `str(text)`: English.
"""

from __future__ import annotations

import functools
import gettext
import io
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeAlias

from babel import Locale
from babel.dates import format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LOCALE = "en"

#: Discord's locale strings (interaction.locale, guild.preferred_locale) → our catalogs. Everything else,
#: en-US and en-GB included, is English. Latin-American Spanish (es-419) reads the Spanish catalog: closer
#: to its readers than English, and Discord offers no separate es-419 catalog of ours to prefer.
DISCORD_LOCALES: dict[str, str] = {
    "zh-CN": "zh_CN",
    "ja": "ja",
    "ko": "ko",
    "es-ES": "es",
    "es-419": "es",
    "pt-BR": "pt_BR",
    "fr": "fr",
    "de": "de",
    "ru": "ru",
}
CATALOGS: tuple[str, ...] = ("zh_CN", "ja", "ko", "es", "pt_BR", "fr", "de", "ru")
NO_SPACES = frozenset({"zh_CN", "ja"})


def catalog_for(locale: object) -> str:
    """Our catalog for a Discord locale (a `discord.Locale` or its string), English when we have none."""
    key = str(getattr(locale, "value", locale) or "")
    return DISCORD_LOCALES.get(key, SOURCE_LOCALE)


# Parameters formatted for the locale -------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount of money, e.g. the price of a video in US dollars."""

    amount: float
    currency: str = "USD"


@dataclass(frozen=True)
class Duration:
    """A length of time as words ("3 minutes"); `relative` gives "in 3 minutes"."""

    seconds: float
    relative: bool = False


@dataclass(frozen=True)
class Number:
    """A number with a fixed count of decimals (plain ints and floats need no wrapper)."""

    value: float
    decimals: int = 1


Param: TypeAlias = "str | int | float | Money | Duration | Number | Text | None"


@dataclass(frozen=True)
class Text:
    """A message for a member, not yet in any language: a msgid, its parameters and, for plurals, the plural
    msgid and the count (also available to the strings as `{count}`)."""

    msgid: str
    params: tuple[tuple[str, Param], ...] = ()
    plural_msgid: str | None = None
    count: int | None = None

    def render(self, locale: str | None = None) -> str:
        return render(self, locale)

    def __str__(self) -> str:  # logs, the command line, tests: English
        return render(self, SOURCE_LOCALE)

    def __add__(self, other: Text | str) -> Text:
        """Two texts shown one after the other ("… Your credits were returned.")."""
        return join(self, other)

    def with_params(self, **params: Param) -> Text:
        """The same message with more parameters (a module-level message completed where it is used)."""
        return Text(self.msgid, (*self.params, *params.items()), self.plural_msgid, self.count)

    def dumps(self) -> str:
        return json.dumps(_encode(self), ensure_ascii=False, separators=(",", ":"))


def _(msgid: str, /, **params: Param) -> Text:
    """Mark `msgid` for translation; `{name}` placeholders are filled from `params` when rendered."""
    return Text(msgid, tuple(params.items()))


def plural(singular: str, plural_msgid: str, count: int, /, **params: Param) -> Text:
    """A message whose form depends on `count` (the locale's plural rules choose), e.g. "{count} credit"."""
    return Text(singular, tuple(params.items()), plural_msgid, count)


def literal(text: str) -> Text:
    """Text shown as it is in every language (a stored message from before translation, a name)."""
    return Text("{text}", (("text", text),))


def join(*parts: Param, sep: str = " ") -> Text:
    """Parts shown one after the other with `sep` between them, each rendered in the reader's language."""
    return Text(_JOIN + sep, tuple((f"p{i}", part) for i, part in enumerate(parts)))


def without(text: Text, *dropped: Text) -> Text:
    """`text` with the parts of a `join` that equal one of `dropped` left out: the command line, which
    spends no member's credits, drops "Your credits were returned."."""
    if not text.msgid.startswith(_JOIN):
        return text
    kept = [part for _name, part in text.params if part not in dropped]
    return join(*kept, sep=text.msgid[len(_JOIN) :])


_JOIN = "\x00join:"  # msgid prefix of a join: not for translation


def render(text: Text | str | None, locale: str | None = None) -> str:
    """`text` in the language of `locale` (a Discord locale or one of our catalog names); a plain string is
    returned as it is."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    catalog = locale if locale in CATALOGS or locale == SOURCE_LOCALE else catalog_for(locale)
    translations = translations_for(catalog)
    if text.msgid.startswith(_JOIN):
        sep = text.msgid[len(_JOIN) :]
        if sep == " " and catalog in NO_SPACES:
            sep = ""  # Chinese and Japanese sentences follow each other without a space
        return sep.join(_format(value, catalog) for _name, value in text.params)
    if text.plural_msgid is not None:
        assert text.count is not None
        template = translations.ngettext(text.msgid, text.plural_msgid, text.count)
    else:
        template = translations.gettext(text.msgid)
    values = {name: _format(value, catalog) for name, value in text.params}
    if text.count is not None:
        values.setdefault("count", _format(text.count, catalog))
    return _fill(template, values)


def _fill(template: str, values: Mapping[str, str]) -> str:
    """`str.format` with named fields only; a field the values lack is left as written (never a KeyError
    in front of a member because a translation misspelt a placeholder)."""
    out: list[str] = []
    for literal_text, field, spec, _conv in string.Formatter().parse(template):
        out.append(literal_text)
        if field is not None:
            out.append(values.get(field, "{" + field + (":" + spec if spec else "") + "}"))
    return "".join(out)


def _format(value: Param, catalog: str) -> str:
    locale = _babel_locale(catalog)
    if value is None:
        return ""
    if isinstance(value, Text):
        return render(value, catalog)
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return format_decimal(value, locale=locale)
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.##", locale=locale)
    if isinstance(value, Number):
        pattern = "#,##0." + "0" * value.decimals if value.decimals else "#,##0"
        return format_decimal(value.value, format=pattern, locale=locale)
    if isinstance(value, Money):
        return format_currency(value.amount, value.currency, locale=locale)
    if isinstance(value, Duration):
        return format_timedelta(
            timedelta(seconds=value.seconds),
            threshold=1.1,
            add_direction=value.relative,
            format="long",
            locale=locale,
        )
    raise TypeError(f"cannot format {type(value).__name__} in a message")


@functools.cache
def _babel_locale(catalog: str) -> Locale:
    return Locale.parse(catalog if catalog != SOURCE_LOCALE else "en_US")


def babel_locale(locale: str | None) -> Locale:
    """Babel's locale for a Discord locale or one of our catalog names (English for anything else)."""
    return _babel_locale(locale if locale in CATALOGS else catalog_for(locale))


@functools.cache
def translations_for(catalog: str) -> gettext.NullTranslations:
    """The catalog compiled in memory from its .po file; English (the msgids) for `en` or a missing file."""
    path = LOCALES_DIR / catalog / "LC_MESSAGES" / f"{DOMAIN}.po"
    if catalog == SOURCE_LOCALE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        po = read_po(fh, locale=catalog)
    buffer = io.BytesIO()
    write_mo(buffer, po, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


# Storage --------------------------------------------------------------------------------------------------


def _encode(value: Param) -> Any:
    if isinstance(value, Text):
        out: dict[str, Any] = {"m": value.msgid}
        if value.params:
            out["a"] = {name: _encode(v) for name, v in value.params}
        if value.plural_msgid is not None:
            out["pl"] = value.plural_msgid
            out["n"] = value.count
        return out
    if isinstance(value, Money):
        return {"$": value.amount, "cur": value.currency}
    if isinstance(value, Duration):
        return {"s": value.seconds, "rel": value.relative}
    if isinstance(value, Number):
        return {"num": value.value, "dec": value.decimals}
    return value


def _decode(value: Any) -> Param:
    if isinstance(value, dict):
        if "m" in value:
            params = tuple((k, _decode(v)) for k, v in (value.get("a") or {}).items())
            return Text(value["m"], params, value.get("pl"), value.get("n"))
        if "$" in value:
            return Money(value["$"], value["cur"])
        if "s" in value:
            return Duration(value["s"], value["rel"])
        if "num" in value:
            return Number(value["num"], value["dec"])
    return value  # str, int, float or None, as stored


def loads(stored: str | None) -> Text | None:
    """A stored text back (`Text.dumps`); a plain string stored before translation existed is shown as
    it is."""
    if not stored:
        return None
    if stored.startswith('{"m":'):
        try:
            decoded = _decode(json.loads(stored))
        except (ValueError, KeyError, TypeError):
            return literal(stored)
        if isinstance(decoded, Text):
            return decoded
    return literal(stored)


def as_text(value: Text | str) -> Text:
    return value if isinstance(value, Text) else literal(value)
