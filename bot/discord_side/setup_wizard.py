"""`python -m bot setup`: ask for what `.env` needs, check it, write it readable by its owner only.

Interactive by default: the Discord token is read hidden (getpass) and its shape checked before anything is
written; the Novita key is read hidden too, or left out for trial mode; an optional monthly budget per server.
The file is written from `.env.example` (so every other setting stays documented in it), or, when `.env`
exists, updated in place after asking, keeping every other line. Then the invite link and the next command.

For scripts: `--non-interactive` reads DISCORD_TOKEN and NOVITA_API_KEY from the environment (never from the
command line, where other users could read them), with `--trial`, `--budget USD` and `--force` to update an
existing file.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

TRIES = 3
DISCORD_HELP = (
    "The bot token: Discord Developer Portal (https://discord.com/developers/applications) → your "
    "application → Bot → Reset Token → Copy."
)
KEY_HELP = (
    "The Novita API key: https://novita.ai/settings/key-management (the account needs prepaid credit). "
    "Press Enter without a key for trial mode: simulated videos, nothing is paid."
)
BUDGET_HELP = (
    "A monthly budget in USD for each server (a video that would pass it is refused). With the defaults, "
    "each member can spend up to 5 credits a day, about $1.40. Press Enter for no budget."
)


class SetupError(Exception):
    """Setup cannot go on; the message says why and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file", type=Path, default=Path(".env"), help="the file to write (default: .env here)"
    )
    parser.add_argument(
        "--non-interactive",
        action="store_true",
        help="ask nothing: read DISCORD_TOKEN and NOVITA_API_KEY from the environment",
    )
    parser.add_argument("--trial", action="store_true", help="trial mode: no Novita key, simulated videos")
    parser.add_argument("--budget", type=float, help="monthly budget in USD for each server (0: none)")
    parser.add_argument("--force", action="store_true", help="update an existing file without asking")


def next_command(args: list[str] | None = None) -> str:
    """How the operator runs the bot: through scripts/start.py when that is how setup was started."""
    via_script = bool(os.environ.get("HAILUO_CALLER_CWD"))
    base = "python3 scripts/start.py" if via_script else "python -m bot"
    return " ".join([base, *(args or [])])


def env_path(args: argparse.Namespace) -> Path:
    path: Path = args.env_file
    if not path.is_absolute() and path != Path(".env"):  # typed by the operator, relative to their folder
        path = Path(os.environ.get("HAILUO_CALLER_CWD") or ".") / path
    return path


def run_setup(args: argparse.Namespace) -> int:
    values: dict[str, str | None] | None
    try:
        if args.non_interactive:
            values = from_environment(args)
        else:
            values = ask(args, input_fn=input, secret_fn=getpass.getpass)
            if values is None:
                return 0
        path = env_path(args)
        if path.exists() and not args.force and args.non_interactive:
            raise SetupError(f"{path} exists already; add --force to update it (its other lines are kept).")
        write_env(path, values)
    except SetupError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        print("\nSetup stopped; nothing was written.", file=sys.stderr)
        return 130
    print(f"\nWrote {path} (readable by you only).")
    print_next_steps(values)
    return 0


def token_error(token: str) -> str | None:
    from ..core.bot_token import token_problem

    return token_problem(token)


def key_error(key: str) -> str | None:
    if any(c.isspace() for c in key):
        return "The Novita key has spaces in it; copy just the key."
    if len(key) < 8:
        return "That is too short for a Novita key; copy the whole key from Key Management."
    return None


def parse_budget(text: str) -> float | None:
    """'' or 0: no budget; otherwise a positive number of US dollars ('$50' and '50.00' work)."""
    text = text.strip().lstrip("$").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SetupError(f"“{text}” is not an amount in US dollars; type a number like 25.") from None
    if value < 0 or value != value or value > 1_000_000:
        raise SetupError("The budget must be between 0 and 1,000,000 US dollars.")
    return round(value, 2) or None


def from_environment(args: argparse.Namespace) -> dict[str, str | None]:
    token = (os.environ.get("DISCORD_TOKEN") or "").strip()
    if not token:
        raise SetupError("DISCORD_TOKEN is not set in the environment. " + DISCORD_HELP)
    if problem := token_error(token):
        raise SetupError(problem)
    key = (os.environ.get("NOVITA_API_KEY") or "").strip()
    if not args.trial:
        if not key:
            raise SetupError(
                "NOVITA_API_KEY is not set in the environment; set it, or add --trial for trial mode."
            )
        if problem := key_error(key):
            raise SetupError(problem)
    budget = parse_budget(str(args.budget)) if args.budget is not None else None
    return settings_values(token, None if args.trial else key, budget)


def settings_values(token: str, key: str | None, budget: float | None) -> dict[str, str | None]:
    """The lines setup writes; None comments a line out (the default applies)."""
    return {
        "DISCORD_TOKEN": token,
        "NOVITA_API_KEY": key or "",
        "NOVITA_MODE": None if key else "simulate",
        "MONTHLY_BUDGET_USD": f"{budget:g}" if budget else None,
    }


def ask(
    args: argparse.Namespace, input_fn: Callable[[str], str], secret_fn: Callable[[str], str]
) -> dict[str, str | None] | None:
    path = env_path(args)
    print("Hailuo Bot setup: this writes the settings the bot needs to " + str(path) + ".")
    print("Nothing is sent anywhere; secrets are not shown as you type them.\n")
    if path.exists() and not args.force:
        answer = input_fn(f"{path} exists. Update it (its other lines are kept)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing was changed.")
            return None
    print(DISCORD_HELP)
    token = ""
    for attempt in range(1, TRIES + 1):
        token = secret_fn("Bot token (hidden): ").strip()
        problem = token_error(token) if token else "Nothing was pasted."
        if problem is None:
            break
        print(problem)
        if attempt == TRIES:
            raise SetupError("No usable token after three tries; nothing was written. Run setup again.")
    from ..core.bot_token import application_id_from_token

    print(f"The token looks right (application {application_id_from_token(token)}).\n")
    key: str | None = None
    if args.trial:
        print("Trial mode: no Novita key needed.")
    else:
        print(KEY_HELP)
        for attempt in range(1, TRIES + 1):
            key = secret_fn("Novita API key (hidden; Enter for trial mode): ").strip() or None
            problem = key_error(key) if key else None
            if problem is None:
                break
            print(problem)
            if attempt == TRIES:
                raise SetupError("No usable key after three tries; nothing was written. Run setup again.")
        print("Trial mode: videos are simulated until you add a key." if key is None else "Key noted.\n")
    budget = args.budget
    if budget is None and key is not None:
        print(BUDGET_HELP)
        for attempt in range(1, TRIES + 1):
            try:
                budget = parse_budget(input_fn("Monthly budget per server in USD (Enter: none): "))
                break
            except SetupError as exc:
                print(exc)
                if attempt == TRIES:
                    raise
    return settings_values(token, key, budget)


# Writing .env ---------------------------------------------------------------------------------------------
_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=")


def render_env(template: str, values: dict[str, str | None]) -> str:
    """`template` with each of `values` set where its line is (commented or not), added when missing.

    A None value comments the line out, so the default applies. Every other line stays as it was."""
    out: list[str] = []
    done: set[str] = set()
    for line in template.splitlines():
        match = _LINE.match(line)
        name = match.group(2) if match else None
        if name in values:
            if name in done:
                if match and not match.group(1):  # a second live definition would win: drop it
                    continue
                out.append(line)
                continue
            done.add(name)
            value = values[name]
            if value is None:  # unset: a commented line stays as documented, a live one is cleared
                out.append(line if match and match.group(1) else f"# {name}=")
            else:
                out.append(f"{name}={value}")
            continue
        out.append(line)
    missing = [n for n in values if n not in done and values[n] is not None]
    if missing:
        out += ["", *(f"{n}={values[n]}" for n in missing)]
    return "\n".join(out) + "\n"


def write_env(path: Path, values: dict[str, str | None]) -> None:
    """Write atomically with mode 0600: the new file is never readable by others, not even for a moment."""
    if path.exists():
        template = path.read_text(encoding="utf-8")
    else:
        example = Path(".env.example")
        template = example.read_text(encoding="utf-8") if example.exists() else ""
    text = render_env(template, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def print_next_steps(values: dict[str, str | None]) -> None:
    from ..core.bot_token import application_id_from_token
    from .invite import invite_url

    app_id = application_id_from_token(values["DISCORD_TOKEN"] or "")
    if values.get("NOVITA_MODE") == "simulate":
        print("Trial mode is on: videos are simulated, nothing is paid. Add NOVITA_API_KEY later to go live.")
    if app_id is not None:
        print("\nAdd the bot to your server: open this link, pick the server (you need Manage Server there),")
        print("and press Authorise:\n")
        print(f"    {invite_url(app_id)}\n")
    print("Then start the bot (it registers its slash commands by itself):\n")
    print(f"    {next_command()}\n")
    print(f"To check everything first: {next_command(['check', '--online'])}")
