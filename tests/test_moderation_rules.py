"""Moderator input rules without Discord: credit words, blocklist entries and the pattern guard, the
moderation-log line, and the spreadsheet-safe CSV cell."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime

import pytest

from bot.core import quota
from bot.core.blocklist import (
    MAX_TOTAL_WORK,
    MAX_WORK,
    EntryRejected,
    blocklist_hit,
    normalise_entry,
    pattern_problem,
    pattern_work,
    screen,
)
from bot.core.models import ChargeState, Job, JobState
from bot.core.policy import MemberPolicy
from bot.core.quota import parse_cost
from bot.core.reports import text_cell
from bot.core.settings import Period
from bot.discord_side.modlog import modlog_line, safe_text

ADVERSARIAL = ("a" * 2000, "ab" * 1000, "a " * 1000, " " * 2000, "aaaaaaaaab" * 200, "\u00e9" * 2000)


@pytest.mark.parametrize(
    "pattern",
    [r"\bkill\b", r"fl(y|ies)", r"\bnude\w*", r"a.{0,50}b", r"(?:very )?bad", r"[0-9]{3}-[0-9]{4}", r"x+"],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    assert normalise_entry(f"RE: {pattern} ") == f"re:{pattern}"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a+)+b", "Nested repetition"),
        (r"(\w+\s?)+$", "Nested repetition"),
        ("(cat|dog)+", "alternatives"),
        ("(?:x|xy){2,9}", "alternatives"),
        (".*a.*b", "repeats too freely"),
        (r"\w+\s+\w+", "repeats too freely"),
        ("a?" * 12 + "a" * 12, "repeats too freely"),
        (".{0,5000}x", "repeats too freely"),
        (r"(a)\1", "Backreferences"),
        (r"(a)?(?(1)b|c)", "Backreferences"),
        ("x*", "matches an empty prompt"),
        ("", "empty"),
        ("(unclosed", "isn't a valid regular expression"),
        ("a" * 201, "at most 200 characters"),
    ],
)
def test_pathological_patterns_are_refused_with_a_reason(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert reason in problem
    with pytest.raises(EntryRejected, match=re.escape(reason)):
        normalise_entry("re:" + pattern)


def test_accepted_patterns_stay_fast_on_hostile_prompts() -> None:
    """A fuzz over pattern shapes: whatever the guard lets through stays within its work bound on worst-case
    prompts (no timing here: the machine is shared; the cost is measured in the bench)."""
    rng = random.Random(5)
    atoms = ["a", "b", ".", r"\w", r"\s", "[ab]", "(?:ab)", "(a|b)", r"\b", "x", "(?:a|ab)"]
    quants = ["", "", "*", "+", "?", "{0,5}", "{1,50}", "{2,}", "*?", "{3}"]
    accepted = 0
    for _ in range(600):
        pattern = "".join(rng.choice(atoms) + rng.choice(quants) for _ in range(rng.randint(1, 6)))
        if pattern_problem(pattern) is not None:
            continue
        accepted += 1
        assert pattern_work(pattern) <= MAX_WORK, pattern  # the guard's bound holds for what it lets in
        for text in ADVERSARIAL:
            blocklist_hit(text, ["re:" + pattern])  # and it runs to an answer (the time is the bench's)
    assert accepted > 50


def test_a_full_blocklist_of_patterns_has_a_bounded_cost() -> None:
    shapes = [r".+q", r"\w+z", r"a.*y", r"b.*w", r"[ab]*v", r"a+u", r"\s*k"]
    entries: list[str] = []
    for n in range(MAX_TOTAL_WORK // MAX_WORK - 1):
        entries.append(normalise_entry(f"re:{shapes[n % len(shapes)]}{'j' * n}", entries))
    entries.append(normalise_entry(r"re:\bfl(y|ies)\b", entries))  # bounded patterns cost next to nothing
    with pytest.raises(EntryRejected, match="too slow"):
        normalise_entry("re:c+d", entries)
    entries = [*entries[1:], normalise_entry("re:c+d", entries[1:])]  # removing one makes room
    assert sum(pattern_work(e[3:]) for e in entries) <= MAX_TOTAL_WORK
    for text in ADVERSARIAL:  # a prompt crafted to make every pattern scan without matching
        assert blocklist_hit(text, entries) is None


@pytest.mark.parametrize(
    "prompt",
    [
        "a ｎｕｄｅ portrait",  # full-width letters
        "a nu\u0336de portrait",  # a strike-through mark over the u
        "a nu\u0308de portrait",  # a combining diaeresis
        "a nüde portrait",  # the same, precomposed
        "a n\u200bu\u200dd\u00ade portrait",  # zero-width space, joiner and a soft hyphen inside
        "a NU\ufe0fDE portrait",  # a variation selector
        "a 𝐧𝐮𝐝𝐞 portrait",  # mathematical bold letters
    ],
)
def test_look_alike_spellings_still_hit_a_rule(prompt: str) -> None:
    assert blocklist_hit(prompt, ["nude"]) == "nude"
    assert blocklist_hit(prompt, [r"re:\bnude\b"]) == r"re:\bnude\b"


def test_a_rule_written_with_look_alikes_is_folded_too() -> None:
    assert blocklist_hit("a nude portrait", ["ｎｕ\u0336ｄｅ"]) == "ｎｕ\u0336ｄｅ"
    assert blocklist_hit("a nude portrait", ["re:ｎｕｄｅ"]) == "re:ｎｕｄｅ"
    assert blocklist_hit("NOT shown", [r"re:\S+ shown"]) == r"re:\S+ shown"  # escapes keep their case


def test_folding_keeps_other_scripts_words_apart() -> None:
    assert blocklist_hit("ハカ", ["バカ"]) is None  # a voicing mark is spelling, not decoration
    assert blocklist_hit("バカ", ["バカ"]) == "バカ"
    assert blocklist_hit("नमस्ते", ["नमसत"]) is None  # Devanagari vowel signs and virama stay
    assert blocklist_hit("a nudist", ["nude"]) is None  # still whole words


async def test_screening_a_prompt_leaves_the_event_loop_free() -> None:
    """The worst case of a full blocklist of patterns runs in a worker thread: the loop keeps turning."""
    shapes = [r".+q", r"\w+z", r"a.*y", r"b.*w", r"[ab]*v", r"a+u", r"\s*k"]
    entries: list[str] = []
    for n in range(MAX_TOTAL_WORK // MAX_WORK):
        entries.append(normalise_entry(f"re:{shapes[n % len(shapes)]}{'j' * n}", entries))
    turns = 0
    done = False

    async def ticker() -> None:
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = turns
    try:
        hit = await screen("ab" * 1000, entries)
        during = turns - before  # read before anything else can give the ticker a turn
    finally:
        done = True
        await task
    assert hit is None
    assert during > 0  # on the loop, the screening would have run start to end without a turn


def test_words_are_trimmed_and_empty_ones_refused() -> None:
    assert normalise_entry("  bad   word ") == "bad word"
    with pytest.raises(EntryRejected, match="empty"):
        normalise_entry("\u200b\u200b ")
    with pytest.raises(EntryRejected, match="at most 100"):
        normalise_entry("w" * 101)
    assert blocklist_hit("a Bad  Word here", [normalise_entry("bad word")]) is None  # spacing matters
    assert blocklist_hit("a bad word here", [normalise_entry("BAD word")]) == "BAD word"


def test_credit_words() -> None:
    assert quota.parse_limit("5") == 5
    assert quota.parse_limit(" 0 ") == 0
    assert quota.parse_limit("Unlimited") == quota.UNLIMITED
    assert quota.parse_limit("-1") == quota.UNLIMITED
    assert quota.parse_limit("default") is None
    for bad in ("-5", "lots", "1.5", "999999999"):
        with pytest.raises(ValueError, match="isn't a credit limit"):
            quota.parse_limit(bad)
    assert parse_cost("3") == 3
    assert parse_cost("default") is None
    with pytest.raises(ValueError, match="isn't a credit cost"):
        parse_cost("unlimited")
    assert str(quota.describe_limit(1, Period.DAY)) == "1 credit a day"
    assert str(quota.describe_limit(10, Period.WEEK)) == "10 credits a week"
    assert str(quota.describe_limit(quota.UNLIMITED)) == "unlimited"
    assert str(quota.describe_limit(0)) == "blocked (0 credits)"


def test_a_reset_marker_only_counts_inside_its_period() -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    policy = MemberPolicy(5, Period.DAY, False, 2, 10, None)
    assert quota.effective_period_start(policy, now) == datetime(2026, 11, 25, tzinfo=UTC)
    today = MemberPolicy(
        5, Period.DAY, False, 2, 10, None, usage_reset_at=datetime(2026, 11, 25, 9, tzinfo=UTC)
    )
    assert quota.effective_period_start(today, now) == datetime(2026, 11, 25, 9, tzinfo=UTC)
    stale = MemberPolicy(
        5, Period.DAY, False, 2, 10, None, usage_reset_at=datetime(2026, 11, 24, 9, tzinfo=UTC)
    )
    assert quota.effective_period_start(stale, now) == datetime(2026, 11, 25, tzinfo=UTC)


def job(**fields: object) -> Job:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    values: dict[str, object] = {
        "id": 7, "state": JobState.DELIVERED, "guild_id": 1, "channel_id": 2, "user_id": 3, "prompt": "p",
        "duration": 6, "resolution": "768P", "prompt_expansion": True, "credits": 1, "cost_usd": 0.28,
        "charge_state": ChargeState.CHARGED, "created_at": now, "updated_at": now,
        "delivered_via": "channel", "result_channel_id": 2, "result_message_id": 99,
    }  # fmt: skip
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def test_modlog_line_escapes_the_prompt_and_links_the_result() -> None:
    line = modlog_line(job(prompt="hey @everyone <@123456789012345678> <@&42> <#7> **loud** `code`"))
    assert line.startswith("✅ **#7** · <@3> in <#2> · 6 s · 768P")
    assert "<https://discord.com/channels/1/2/99>" in line
    prompt = line.split("\n> ", 1)[1]
    assert "@everyone" not in prompt
    assert "<@1" not in prompt
    assert "<@&" not in prompt
    assert "<#" not in prompt
    assert "**" not in prompt
    assert "$0.28" in line
    failed = modlog_line(job(state=JobState.FAILED, charge_state=ChargeState.REFUNDED, error="Nope.",
                             result_message_id=None, card_channel_id=2, card_message_id=50))  # fmt: skip
    assert failed.startswith("❌")
    assert "refunded" in failed
    assert "Nope." in failed
    assert "/2/50>" in failed
    assert "detail" not in failed
    novita = modlog_line(job(state=JobState.FAILED, charge_state=ChargeState.REFUNDED, error="It failed.",
                             error_detail="NovitaNoBalance status=403 NOT_ENOUGH_BALANCE <@&9>"))  # fmt: skip
    assert "-# detail: NovitaNoBalance status=403 NOT\\_ENOUGH\\_BALANCE" in novita
    assert "<@&" not in novita
    assert len(modlog_line(job(prompt="x" * 2000))) <= 2000
    assert safe_text("a\nb\n\nc") == "a b c"


def test_text_cells_never_start_a_formula() -> None:
    assert text_cell("=1+1") == "'=1+1"
    assert text_cell("+33 6") == "'+33 6"
    assert text_cell("-x") == "'-x"
    assert text_cell("@SUM(A1)") == "'@SUM(A1)"
    assert text_cell("a = b") == "a = b"
    assert text_cell("line\r\nbreak") == "line\nbreak"
    assert text_cell(None) == ""
