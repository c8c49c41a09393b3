"""The mention parser: who is addressed, the prompt, and the flags."""

from __future__ import annotations

import pytest

from bot.core.mention_flags import FLAG_HELP, MentionRequest, addresses_bot, parse_mention

BOT = 1234
ROLE = 777


@pytest.mark.parametrize(
    ("content", "addressed"),
    [
        (f"<@{BOT}> a fox", True),
        (f"<@!{BOT}> a fox", True),
        (f"a fox, <@{BOT}>", True),
        (f"<@&{ROLE}> a fox", True),  # the bot's managed role, as autocomplete often picks it
        ("<@&999> a fox", False),
        ("<@12345> a fox", False),  # another id that merely starts with the bot's
        ("just replying to the bot", False),
        ("", False),
    ],
)
def test_addresses_bot(content: str, addressed: bool) -> None:
    assert addresses_bot(content, BOT, [ROLE]) is addressed


def test_plain_prompt_keeps_defaults() -> None:
    assert parse_mention(f"<@{BOT}>   a red fox  running ", BOT) == MentionRequest(prompt="a red fox running")


def test_flags_are_read_and_removed_from_the_prompt() -> None:
    parsed = parse_mention(f"<@{BOT}> a fox --duration 10 in snow --no-expansion", BOT)
    assert parsed == MentionRequest(prompt="a fox in snow", duration=10, prompt_expansion=False)


@pytest.mark.parametrize(
    ("text", "duration", "resolution"),
    [  # None: not given (the member's preferences or the defaults apply later)
        ("--resolution 1080P", None, "1080P"),
        ("--resolution 1080p", None, "1080P"),
        ("--resolution=1080", None, "1080P"),
        ("--duration=10", 10, None),
        ("--duration 10s", 10, None),
        ("—duration 10", 10, None),  # a phone's em dash
        ("–resolution 768p", None, "768P"),
        ("--DURATION 6", 6, None),
    ],
)
def test_flag_forms(text: str, duration: int | None, resolution: str | None) -> None:
    parsed = parse_mention(f"<@{BOT}> waves {text}", BOT)
    assert (parsed.prompt, parsed.duration, parsed.resolution, parsed.error) == (
        "waves",
        duration,
        resolution,
        None,
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("--duration 8", "The --duration flag takes 6 or 10 (seconds)."),
        ("--resolution 4K", "The --resolution flag takes 768P or 1080P."),
        ("--duration", f"The --duration flag needs a value. {FLAG_HELP}"),
        ("--durations 10", f"I don't know the flag --durations. {FLAG_HELP}"),
    ],
)
def test_bad_flags_are_refused_in_one_sentence(text: str, error: str) -> None:
    parsed = parse_mention(f"<@{BOT}> waves {text}", BOT)
    assert parsed.error == error


def test_dashes_in_prose_stay_prose() -> None:
    parsed = parse_mention(f"<@{BOT}> a cat — then —jumping -- fast", BOT)
    assert parsed.error is None
    assert parsed.prompt == "a cat — then —jumping -- fast"


def test_lines_and_other_mentions_are_kept() -> None:
    parsed = parse_mention(f"<@{BOT}> first line\n  <@55> second line --no-expansion", BOT)
    assert parsed.prompt == "first line\n<@55> second line"
    assert parsed.prompt_expansion is False


def test_mention_only_gives_an_empty_prompt() -> None:
    assert parse_mention(f"<@{BOT}>", BOT).prompt == ""
    assert parse_mention(f"<@&{ROLE}> --duration 10", BOT, [ROLE]).prompt == ""
