"""Members read the bot in their own language: the catalogs are complete and current, translations keep
their placeholders and plural forms, and texts render with the reader's locale (numbers, money, durations
included) and survive being stored."""

from __future__ import annotations

import importlib.util
import re
import string
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.core import i18n
from bot.core.i18n import CATALOGS, Duration, Money, Number, Text, _, catalog_for, join, plural, render

ROOT = Path(__file__).resolve().parent.parent


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def ids(catalog: Catalog) -> set[str | tuple[str, str]]:
    return {m.id for m in catalog if m.id}


def fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


@pytest.fixture(scope="module")
def template() -> Catalog:
    return load_script().extract()


def test_the_template_holds_exactly_the_strings_the_code_marks(template: Catalog) -> None:
    committed = read(i18n.LOCALES_DIR / "messages.pot")
    code, pot = ids(template), ids(committed)
    assert code, "no marked strings found: is babel.cfg reading the code?"
    assert not code - pot, f"messages.pot lacks {sorted(map(str, code - pot))[:5]}: run scripts/i18n.py"
    assert not pot - code, f"messages.pot has stale {sorted(map(str, pot - code))[:5]}: run scripts/i18n.py"


@pytest.mark.parametrize("locale", CATALOGS)
def test_every_catalog_translates_every_message_without_fuzzy_guesses(locale: str, template: Catalog) -> None:
    catalog = read(i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    missing = ids(template) - ids(catalog)
    assert not missing, f"{locale} lacks {len(missing)} msgid(s), e.g. {sorted(map(str, missing))[:3]}"
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, f"{locale}: fuzzy translation of {message.id!r}"
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{locale}: no translation of {message.id!r}"


@pytest.mark.parametrize("locale", CATALOGS)
def test_translations_keep_the_placeholders_and_the_plural_forms(locale: str) -> None:
    catalog = read(i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    for message in catalog:
        if not message.id or not message.string or message.string == ("",) * catalog.num_plurals:
            continue  # missing: the completeness test names it
        if message.pluralizable:
            singular, plural_id = message.id
            assert len(message.string) == catalog.num_plurals, f"{locale}: plural forms of {singular!r}"
            # a form may leave {count} out (Japanese "1本" vs "{count}本" is fine); nothing else may differ
            allowed = fields(singular) | fields(plural_id) | {"count"}
            for form in message.string:
                assert fields(form) <= allowed, f"{locale}: {form!r} invents a placeholder"
                assert fields(plural_id) - {"count"} <= fields(form), f"{locale}: {form!r} drops one"
        else:
            assert fields(message.string) == fields(message.id), f"{locale}: {message.string!r}"


def test_the_catalogs_and_template_are_current() -> None:
    assert load_script().main(["--check"]) == 0


@pytest.mark.parametrize(
    ("discord_locale", "catalog"),
    [
        ("ja", "ja"),
        ("pt-BR", "pt_BR"),
        ("zh-CN", "zh_CN"),
        ("es-ES", "es"),
        ("es-419", "es"),
        ("ko", "ko"),
        ("fr", "fr"),
        ("de", "de"),
        ("ru", "ru"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("zh-TW", "en"),
        ("it", "en"),
        (None, "en"),
    ],
)
def test_discord_locales_map_to_our_catalogs_and_the_rest_to_english(
    discord_locale: str | None, catalog: str
) -> None:
    assert catalog_for(discord_locale) == catalog


def test_a_text_renders_in_the_readers_language_and_in_english_for_logs() -> None:
    # a msgid the code really uses, so the catalogs have it
    text = _("Something went wrong on our side and it has been logged. Please try again.")
    assert str(text) == "Something went wrong on our side and it has been logged. Please try again."
    japanese = render(text, "ja")
    assert japanese != str(text)
    assert re.search("[\u3040-\u30ff\u4e00-\u9fff]", japanese)
    assert render(text, "en-US") == str(text)
    assert render(text, "it") == str(text)  # no Italian catalog: English


def test_parameters_are_formatted_for_the_locale() -> None:
    template = Text("{n} {price} {took}", (("n", 12345), ("price", Money(0.27)), ("took", Duration(125))))
    assert render(template, "en-US") == "12,345 $0.27 2 minutes"
    assert render(template, "de") == "12.345 0,27\xa0$ 2 Minuten"
    assert render(Text("{x}", (("x", Number(2.5, 1)),)), "fr") == "2,5"
    assert render(Text("{d}", (("d", Duration(7200, relative=True)),)), "ja") == "2 時間後"


def test_plurals_follow_the_languages_rules() -> None:
    # Russian has three forms: 1, 2–4, 5+; the catalog's own plural rule picks them
    catalog = read(i18n.LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po", "ru")
    message = next(m for m in catalog if m.pluralizable)
    singular, plural_id = message.id
    forms = {render(plural(singular, plural_id, n, **_dummy(plural_id)), "ru") for n in (1, 3, 5)}
    assert len(forms) == 3
    assert render(plural(singular, plural_id, 1, **_dummy(plural_id)), "en") != render(
        plural(singular, plural_id, 2, **_dummy(plural_id)), "en"
    )


def _dummy(msgid: str) -> dict[str, i18n.Param]:
    return {name: "x" for name in fields(msgid) if name != "count"}


def test_a_stored_text_comes_back_whole_and_renders_later_in_any_language() -> None:
    reason = "Novita's own words: prompt rejected"  # quoted as written, never translated
    text = join(
        _("The video service could not make this video: {reason}", reason=reason),
        _("Your credits were returned."),
    )
    stored = text.dumps()
    back = i18n.loads(stored)
    assert back == text
    assert reason in render(back, "ja")
    assert render(back, "ja") != render(back, "en")
    assert str(back) == f"The video service could not make this video: {reason} Your credits were returned."


def test_a_plain_stored_error_from_before_translation_is_shown_as_written() -> None:
    assert str(i18n.loads("The video could not be made.")) == "The video could not be made."
    assert i18n.loads(None) is None


def test_a_translation_with_a_misspelt_placeholder_never_raises() -> None:
    assert i18n._fill("{nmae} left", {"name": "x"}) == "{nmae} left"


async def test_the_command_line_says_a_failure_once_in_english_without_the_refund() -> None:
    from datetime import UTC, datetime

    from bot.core.jobs import REFUNDED
    from bot.core.models import ChargeState, Job, JobState
    from bot.core.reporting import ConsoleReporter, cli_error

    now = datetime(2026, 11, 30, tzinfo=UTC)
    error = join(_("The video service couldn't make this video: “{reason}”.", reason="Too dark."), REFUNDED)
    job = Job(
        id=7, state=JobState.FAILED, guild_id=None, channel_id=None, user_id=0, prompt="a cat", duration=6,
        resolution="768P", prompt_expansion=True, credits=1, cost_usd=0.28, charge_state=ChargeState.REFUNDED,
        created_at=now, updated_at=now, error=error.dumps(), locale="ja",
    )  # fmt: skip
    lines: list[str] = []
    await ConsoleReporter(echo=lines.append).job_ended(job)
    said = cli_error(job)
    assert "Too dark." not in "\n".join(lines)  # the progress line names the state; the reason comes once
    assert said == "The video service couldn't make this video: “Too dark.”."
    assert "credit" not in said  # the operator's own jobs spend no member's credits
