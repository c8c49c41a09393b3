"""One voice: the phrases that appear in several places, written once, so prices, remaining credits and
budgets read the same in /about, /usage, /quota, the result card and the refusals.

- a price: "6 s 768P: 1 credit" (the price list joins them with " · ");
- remaining credits: "3 of 5 left today" (the reset follows as "resets <t:…:R>" where it helps);
- money: the locale's own currency format ("$4.00", "4,00 $").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .i18n import Money, Text, _, join, plural
from .settings import Period


def discord_time(dt: datetime, style: str = "R") -> str:
    """A Discord timestamp markup that each member's client shows in their own time zone and language."""
    return f"<t:{int(dt.timestamp())}:{style}>"


def price(resolution: str, seconds: int, credits: int) -> Text:
    return plural(
        "{seconds} s {resolution}: {count} credit",
        "{seconds} s {resolution}: {count} credits",
        credits,
        seconds=seconds,
        resolution=resolution,
    )


def price_list(table: Mapping[tuple[str, int], int], kinds: Iterable[tuple[str, int]] | None = None) -> Text:
    """Every kind of video and its price, in the table's order (or `kinds`')."""
    keys = list(kinds) if kinds is not None else list(table)
    return join(*(price(res, dur, table[(res, dur)]) for res, dur in keys), sep=" · ")


def remaining(left: int, allowance: int, period: Period) -> Text:
    """'3 of 5 left today' (the credits are named by the field or sentence around it)."""
    if period == Period.DAY:
        return _("{left} of {total} left today", left=left, total=allowance)
    if period == Period.WEEK:
        return _("{left} of {total} left this week", left=left, total=allowance)
    return _("{left} of {total} left this month", left=left, total=allowance)


def resets(when: datetime) -> Text:
    return _("resets {when}", when=discord_time(when))


def remaining_line(left: int | None, allowance: int | None, period: Period, reset_at: datetime) -> Text:
    """'3 of 5 left today · resets <t:…:R>', or 'Unlimited credits'."""
    if allowance is None or left is None:
        return _("Unlimited credits")
    return join(remaining(left, allowance, period), resets(reset_at), sep=" · ")


def money(amount: float) -> Money:
    return Money(amount, "USD")


def budget_line(left_usd: float, budget_usd: float, renews_at: datetime, default: bool) -> Text:
    """'$3.20 of $5.00 left this month · renews <t:…:R>'."""
    if default:
        text = _(
            "{left} of {budget} left this month (the bot's default) · renews {when}",
            left=money(left_usd),
            budget=money(budget_usd),
            when=discord_time(renews_at),
        )
    else:
        text = _(
            "{left} of {budget} left this month · renews {when}",
            left=money(left_usd),
            budget=money(budget_usd),
            when=discord_time(renews_at),
        )
    return text
