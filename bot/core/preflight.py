"""The offline checks a start runs before it contacts anything, shared by `python -m bot` and `check`.

One function decides whether the settings can start the bot, so `python -m bot check` can never say
"All good." to a configuration that `python -m bot` refuses. `check` adds its own checks on top (database,
ffmpeg, and with `--online` Discord and Novita); a start runs only these.
"""

from __future__ import annotations

from .bot_token import token_problem
from .settings import ConfigError, Settings

# What each command needs before it may run: a start and `check` need everything a start needs.
NEEDS_TOKEN = frozenset({"run", "worker", "check", "sync"})
NEEDS_KEY = frozenset({"run", "worker", "check", "generate"})


def startup_problems(settings: Settings, command: str = "run") -> list[str]:
    """Every reason `command` cannot start with these settings, each a sentence naming the variable."""
    problems: list[str] = []
    names: list[str] = []
    if command in NEEDS_TOKEN:
        names.append("discord_token")
    if command in NEEDS_KEY and settings.novita_mode == "live":  # trial mode needs no key
        names.append("novita_api_key")
    for name in names:
        try:
            settings.require(name)
        except ConfigError as exc:
            problems.append(str(exc))
    if command in NEEDS_TOKEN and settings.discord_token is not None:
        problem = token_problem(settings.discord_token.get_secret_value())
        if problem is not None:
            problems.append(problem)
    if command in ("run", "check") and settings.shard_problem:
        problems.append(settings.shard_problem)
    return problems
