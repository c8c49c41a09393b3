"""Leaving an optional keyword of an interaction response out when there is nothing to pass.

`InteractionResponse.send_message` takes `view=MISSING` (discord.py's own "not given" marker) by default, and
its type hints accept only a real view; `or_missing` passes the marker for None, so the call says the same
thing to the type checker without building keyword dicts by hand. (Messageable.send is different: its
default is None, which is passed as it is.)
"""

from __future__ import annotations

from typing import TypeVar

from discord.utils import MISSING

T = TypeVar("T")


def or_missing(value: T | None) -> T:
    """`value`, or discord.py's "not given" marker when it is None."""
    return MISSING if value is None else value
