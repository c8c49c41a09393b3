"""The prompt blocklist: moderators' words and `re:` patterns, screened when saved, matched on prompts.

Python's regular expressions backtrack, and a pattern like `(a+)+$` can take minutes on a 2000-character
prompt. Patterns are therefore judged by their parsed shape before they are saved: no backreferences, no
nested repetition, no alternatives inside a repeated group, and a bound on the work a pattern can do from
each position (see `pattern_work`). Matching then stays well under a second even on hostile prompts, and it
runs in a worker thread (`screen`), where the event loop gets its turn between two patterns.

Prompts and rules are compared after `folded`: full-width letters, ligatures and the like become plain ones,
the marks that decorate letters (n̶, ü) and invisible characters are dropped, so `ｎｕｄｅ` or `nu̶de` still
hit a `nude` rule.
"""

from __future__ import annotations

import asyncio
import functools
import re
import re._constants as sre_c  # the parsed form of a pattern, to judge its shape before saving it
import re._parser as sre_parse
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import InvalidInput
from .i18n import _
from .validation import MAX_PROMPT, visible_text

MAX_BLOCKLIST = 100
MAX_WORD = 100
MAX_PATTERN = 200
OPEN_ENDED = 2000  # an open-ended repetition can run over the whole prompt (at most 2000 characters)
# The work of a pattern is the product of the choices its repetitions offer (an open-ended one counts as the
# whole prompt): it bounds the backtracking from each position. One open-ended repetition (or small bounds)
# per pattern, and about ten such patterns per server, keep a crafted prompt's worst case near 0.3 s.
MAX_WORK = OPEN_ENDED
MAX_TOTAL_WORK = 10 * OPEN_ENDED
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


class EntryRejected(InvalidInput):
    """A blocklist entry that won't be saved; the message is written for the moderator."""


def normalise_entry(entry: str, existing: Iterable[str] = ()) -> str:
    """A blocklist entry as stored: a plain word or phrase, or `re:` and a regular expression.

    Patterns are screened here, once, because they run on every prompt: a pathological one (nested or
    stacked open-ended repetitions, alternation under repetition, backreferences) could stall the bot."""
    entry = entry.strip()
    if entry[:3].casefold() == "re:":
        pattern = entry[3:].strip()
        work = pattern_work(pattern)
        if work + sum(_saved_work(e) for e in existing if e.startswith("re:")) > MAX_TOTAL_WORK:
            raise EntryRejected(
                _(
                    "Together with the patterns already saved this one would be too slow to run on every "
                    "prompt. Remove a pattern first, or add plain words instead."
                )
            )
        return "re:" + pattern
    word = " ".join(visible_text(entry).split())
    if not word:
        raise EntryRejected(_("The entry is empty. Give a word or phrase, or re: followed by a pattern."))
    if len(word) > MAX_WORD:
        raise EntryRejected(_("Words and phrases can be at most {count} characters.", count=MAX_WORD))
    return word


def pattern_problem(pattern: str) -> str | None:
    """Why a moderator's regular expression can't be saved, in one sentence; None when it is safe."""
    try:
        pattern_work(pattern)
    except EntryRejected as exc:
        return str(exc)
    return None


def pattern_work(pattern: str) -> int:
    """The work of a safe pattern (see MAX_WORK); EntryRejected saying why when it isn't safe."""
    if not pattern:
        raise EntryRejected(_("The pattern after re: is empty."))
    if len(pattern) > MAX_PATTERN:
        raise EntryRejected(
            _("Patterns can be at most {count} characters; split it into several entries.", count=MAX_PATTERN)
        )
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        raise EntryRejected(
            _("That pattern isn't a valid regular expression ({error}).", error=msg)
        ) from None
    if compiled.search("") is not None:
        raise EntryRejected(_("That pattern matches an empty prompt, so it would block every video."))
    work = _work(list(parsed))
    if work > MAX_WORK:
        raise EntryRejected(
            _(
                "That pattern repeats too freely to run safely on every prompt: use one open-ended "
                "repetition (+, *, {n,}) at most, or only small bounds such as {1,5}."
            )
        )
    return work


def _saved_work(entry: str) -> int:
    try:
        return pattern_work(entry[3:])
    except EntryRejected:
        return MAX_WORK  # saved before these rules (or by hand): count it as the worst allowed


def _choices(lo: int, hi: int) -> int:
    return OPEN_ENDED if hi == sre_c.MAXREPEAT else max(1, hi - lo + 1)


def _inner_choice(items: list[Any]) -> str | None:
    """Does this part of a pattern contain a repetition or an alternation? ('repeat' | 'branch' | None)"""
    for op, av in items:
        if op == sre_c.BRANCH:
            return "branch"
        if op in _REPEATS and _choices(av[0], av[1]) > 1:
            return "repeat"
        for sub in _children(op, av):
            found = _inner_choice(list(sub))
            if found:
                return found
    return None


def _children(op: Any, av: Any) -> list[Any]:
    if op in _REPEATS:
        return [av[2]]
    if op == sre_c.SUBPATTERN:
        return [av[3]]
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        return [av[1]]
    if op == sre_c.ATOMIC_GROUP:
        return [av]
    if op == sre_c.BRANCH:
        return list(av[1])
    return []


def _work(items: list[Any]) -> int:
    """How many ways the matcher may try this sequence from one position (the product of choices)."""
    work = 1
    for op, av in items:
        if op in (sre_c.GROUPREF, sre_c.GROUPREF_EXISTS):
            raise EntryRejected(_("Backreferences aren't allowed in blocklist patterns."))
        if op in _REPEATS:
            lo, hi, body = av
            inner = _inner_choice(list(body)) if hi > 1 else None
            if inner == "repeat":
                raise EntryRejected(_("Nested repetition such as (a+)+ isn't allowed in blocklist patterns."))
            if inner == "branch":
                raise EntryRejected(
                    _(
                        "A repeated group may not contain alternatives such as (cat|dog)+; list the words as "
                        "separate entries."
                    )
                )
            work *= _choices(lo, hi) * _work(list(body))
        elif op == sre_c.BRANCH:
            work *= sum(_work(list(alt)) for alt in av[1])
        else:
            for sub in _children(op, av):
                work *= _work(list(sub))
        work = min(work, MAX_WORK * OPEN_ENDED)  # enough to judge, without huge numbers
    return work


# Marks that decorate letters (accents, strike-throughs, "zalgo"): the combining diacritical blocks and the
# variation selectors. Marks that are part of other scripts' spelling (Japanese voicing marks, Indic vowel
# signs) are kept, so folding never turns one word of those scripts into another.
_DECORATIONS = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f\U000e0100-\U000e01ef]"
)


def folded(text: str, *, case: bool = True) -> str:
    """`text` as the blocklist compares it: compatibility forms made plain (ｎ → n, ﬁ → fi), decorating
    marks and invisible characters (zero-width, soft hyphen, joiners) dropped; with `case`, case-folded."""
    text = _DECORATIONS.sub("", unicodedata.normalize("NFKD", text))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text)
    return text.casefold() if case else text


@functools.lru_cache(maxsize=1024)
def _word_rule(entry: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(folded(entry))}(?!\w)")


@functools.lru_cache(maxsize=1024)
def _pattern_rule(pattern: str) -> re.Pattern[str]:
    # Not case-folded: that would turn \S into \s. IGNORECASE does that part.
    return re.compile(folded(pattern, case=False), re.IGNORECASE)


def blocklist_hit(prompt: str, entries: Iterable[str]) -> str | None:
    """The first blocklist entry the prompt matches: plain words (whole word, any case) or `re:` patterns,
    both compared after `folded`. Blocking: moderators' patterns may take milliseconds; see `screen`."""
    text = folded(visible_text(prompt))
    for entry in entries:
        pattern = entry.startswith("re:")
        try:
            rule = _pattern_rule(entry[3:]) if pattern else _word_rule(entry)
        except re.error:
            continue
        # Patterns were judged for prompts of MAX_PROMPT characters (folding can lengthen a prompt).
        if rule.search(text[:MAX_PROMPT] if pattern else text):
            return entry
    return None


async def screen(prompt: str, entries: Sequence[str]) -> str | None:
    """`blocklist_hit` off the event loop (patterns are bounded, but ten of them can take 0.1 s together)."""
    if not entries:
        return None
    return await asyncio.to_thread(blocklist_hit, prompt, list(entries))
