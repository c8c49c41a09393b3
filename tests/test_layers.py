"""The core stays Discord-free: no module under bot/core/ loads discord.py, directly or through another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
