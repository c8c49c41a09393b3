"""The two layers hold: ruff refuses discord.py or the Discord side in bot/core/, and the cogs in bot/.

Each case lints a snippet as if it were a file at that path (`--stdin-filename`), so the per-directory rules
in bot/ruff.toml and bot/core/ruff.toml apply without writing into the tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def banned(path: str, source: str) -> list[str]:
    """The TID251 (banned import) findings ruff reports for `source` placed at `path`."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251",
         "--output-format", "concise", "--stdin-filename", path, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return [line for line in done.stdout.splitlines() if "TID251" in line]


@pytest.mark.parametrize(
    "source",
    [
        "import discord\n",
        "from discord import ui\n",
        "from discord.ext import commands\n",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import discord\n",
        "def later() -> None:\n    import discord\n",
    ],
)
def test_a_core_module_that_imports_discord_is_refused(source: str) -> None:
    assert banned("bot/core/new_module.py", source)
    assert banned("bot/core/store/new_module.py", source)


@pytest.mark.parametrize(
    "source",
    ["from ..discord_side import cards\n", "from bot.discord_side.delivery import DiscordReporter\n"],
)
def test_a_core_module_that_imports_the_discord_side_is_refused(source: str) -> None:
    assert banned("bot/core/new_module.py", source)


@pytest.mark.parametrize("path", ["bot/core/new_module.py", "bot/discord_side/new_module.py", "bot/new.py"])
def test_bot_never_imports_the_cogs(path: str) -> None:
    assert banned(path, "from cogs.generate import Generate\n")
    assert banned(path, "import cogs\n")


def test_the_discord_side_and_the_cogs_may_use_discord_and_the_core() -> None:
    source = "import discord\n\nfrom bot.core import media\n\nprint(discord.ui, media)\n"
    assert banned("bot/discord_side/new_module.py", source) == []
    assert banned("cogs/new_cog.py", source + "from bot.discord_side import cards\n\nprint(cards)\n") == []


def test_the_tree_keeps_the_rule() -> None:
    assert banned("bot/core/jobs.py", (ROOT / "bot/core/jobs.py").read_text()) == []
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", "bot", "cogs"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_no_core_module_loads_discord_even_through_another_module() -> None:
    """ruff sees each file's own imports; importing every core module shows none pulls discord.py in."""
    code = (
        "import pkgutil, importlib, sys, bot.core\n"
        "for m in pkgutil.walk_packages(bot.core.__path__, 'bot.core.'): importlib.import_module(m.name)\n"
        "sys.exit('discord' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, "a core module imported discord" + result.stderr
