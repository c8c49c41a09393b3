"""Secrets out of every text the bot keeps or shows: redact first, then cut.

Cutting first is how a key leaks: a 500-character cut can end in the middle of the key, and the piece left
no longer matches the whole secret. So every cut goes through `clip`, which redacts, then cuts. `redact` also
catches what an earlier cut (or the remote server) may have left: a piece of a secret of at least
`MIN_FRAGMENT` characters at the end of a token, such as `sk_live_0a1b…` at the end of a line.

Secrets are registered once (the log setup registers the Discord token and the Novita key; the Novita client
registers its key), so helpers deep in the code need no access to the settings.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable

MASK = "[redacted]"
MIN_SECRET = 6  # shorter values are not treated as secrets (they would mask ordinary words)
MIN_FRAGMENT = 8  # a piece of a secret this long, ending a token, is masked too
ELLIPSIS = "…"

_BEARER_RE = re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+")
_KEY_CHARS = r"[\w.~+/=-]*"  # what API keys and bot tokens are made of

_lock = threading.Lock()
_secrets: list[str] = []


def register(*secrets: str | None) -> None:
    """Treat these values as secrets everywhere from now on (empty and very short values are ignored)."""
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET and secret not in _secrets:
                _secrets.append(secret)
                _secrets.sort(key=len, reverse=True)  # a secret containing another is masked whole


def registered() -> list[str]:
    with _lock:
        return list(_secrets)


@functools.lru_cache(maxsize=64)
def _tokens_from(secret: str) -> re.Pattern[str]:
    """Tokens that start like `secret` (its first MIN_FRAGMENT characters)."""
    return re.compile(re.escape(secret[:MIN_FRAGMENT]) + _KEY_CHARS)


def _mask_prefix(secret: str, mask: str, match: re.Match[str]) -> str:
    """`mask` for a token that begins `secret` (a piece a cut left), the token itself otherwise."""
    return mask if secret.startswith(match.group()) else match.group()


def redact(text: str, secrets: Iterable[str] | None = None, mask: str = MASK) -> str:
    """`text` without the registered secrets (or `secrets`), bearer tokens, and pieces of a secret of at
    least MIN_FRAGMENT characters that end a token (what a cut leaves of a key)."""
    found = registered() if secrets is None else [s for s in secrets if s and len(s) >= MIN_SECRET]
    for secret in found:
        text = text.replace(secret, mask)
    for secret in found:
        if len(secret) > MIN_FRAGMENT and secret[:MIN_FRAGMENT] in text:
            text = _tokens_from(secret).sub(functools.partial(_mask_prefix, secret, mask), text)
    return _BEARER_RE.sub(lambda m: m.group(1) + mask, text)


def clip(text: str, limit: int, mask: str = MASK) -> str:
    """Redact, then cut to at most `limit` characters (the cut marked with an ellipsis)."""
    text = redact(text, mask=mask)
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS if limit >= len(ELLIPSIS) else text[:limit]
