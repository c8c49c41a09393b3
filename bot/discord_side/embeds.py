"""Embeds that Discord always accepts: Discord's limits applied, by construction, in one place.

Discord refuses a whole message (400, code 50035) when one embed part is too long, so a long Novita reason in
a status line would otherwise lose the edit that tells a member their job failed. Every embed the bot builds
is an `Embed` from here (ruff bans `discord.Embed` elsewhere), and its `to_dict`, which discord.py calls when
it sends the message, cuts each part to its limit and the whole to 6000 characters. Cuts end in "…".
"""

from __future__ import annotations

from typing import Any

import discord

TITLE = 256
DESCRIPTION = 4096
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
FIELDS = 25
TOTAL = 6000
EMPTY = "\u200b"  # Discord requires field names and values: an empty one becomes a zero-width space
ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS if limit > 0 else ""


def _water_level(lengths: list[int], budget: int) -> int:
    """The largest cap c such that sum(min(n, c)) <= budget: long parts give way, short ones stay whole."""
    if sum(lengths) <= budget:
        return max(lengths, default=0)
    remaining, count = budget, len(lengths)
    for n in sorted(lengths):
        if n * count > remaining:
            return remaining // count
        remaining -= n
        count -= 1
    return 0


def clamp(data: dict[str, Any]) -> dict[str, Any]:
    """An embed dict (discord.py's `to_dict` shape) within every one of Discord's limits."""
    out = dict(data)
    if "title" in out:
        out["title"] = cut(str(out["title"]), TITLE)
    if isinstance(out.get("footer"), dict) and "text" in out["footer"]:
        out["footer"] = {**out["footer"], "text": cut(str(out["footer"]["text"]), FOOTER)}
    if isinstance(out.get("author"), dict) and "name" in out["author"]:
        out["author"] = {**out["author"], "name": cut(str(out["author"]["name"]), AUTHOR)}
    if "description" in out:
        out["description"] = cut(str(out["description"]), DESCRIPTION)
    if "fields" in out:
        out["fields"] = [
            {
                **f,
                "name": cut(str(f.get("name") or EMPTY), FIELD_NAME),
                "value": cut(str(f.get("value") or EMPTY), FIELD_VALUE),
            }
            for f in (out["fields"] or [])[:FIELDS]
        ]
    while size(out) > TOTAL:
        _share_out(out)
        if size(out) <= TOTAL or not out.get("fields"):
            break
        out["fields"] = out["fields"][:-1]  # only when the fixed parts alone are too long
    return out


def _share_out(out: dict[str, Any]) -> None:
    """Cut the description and field values to what is left of the total, the longest giving way first."""
    fields = out.get("fields") or []
    texts = [out.get("description") or "", *(f["value"] for f in fields)]
    budget = TOTAL - (size(out) - sum(len(t) for t in texts))
    level = _water_level([len(t) for t in texts], max(0, budget - len(fields)))
    if out.get("description"):
        out["description"] = cut(out["description"], level)
        if not out["description"]:
            del out["description"]
    for f in fields:
        f["value"] = cut(f["value"], max(1, level))


class Embed(discord.Embed):  # noqa: TID251 - the one subclass everything else uses
    """A `discord.Embed` that is sent within Discord's limits, however it was filled."""

    def to_dict(self) -> Any:
        return clamp(dict(super().to_dict()))


def size(data: dict[str, Any]) -> int:
    """The characters Discord counts against the 6000 total."""
    return (
        len(data.get("title", ""))
        + len(data.get("description", ""))
        + sum(len(f.get("name", "")) + len(f.get("value", "")) for f in data.get("fields", []))
        + len((data.get("footer") or {}).get("text", ""))
        + len((data.get("author") or {}).get("name", ""))
    )
