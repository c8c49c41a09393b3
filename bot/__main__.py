"""`python -m bot [run|setup|sync|check|invite|backup|generate]`: settings, logging, start.

python -m bot                     start the bot (same as `run`)
python -m bot worker              run jobs only, beside `python -m bot` (PostgreSQL: DATABASE_URL)
python -m bot setup               ask for the token and the Novita key (or trial mode) and write .env
python -m bot sync [--guild ID]   register the slash commands with Discord now (a start does it when needed)
python -m bot check [--online]    the checks a start runs, plus database and ffmpeg (--online: token and key)
python -m bot invite [--guild ID] print the link that adds the bot to a server with the permissions it needs
python -m bot backup [PATH]       write a consistent copy of the database, safe while the bot runs
python -m bot migrate-to-postgres [--from FILE]
                                  copy the SQLite database into the PostgreSQL one at DATABASE_URL
python -m bot generate "a prompt" [--image FILE] [--last-frame FILE] [--model M] [--duration 6|10]
                                  [--resolution 768P|1080P] [--out PATH]
                                  make one video through the same job runner (tests an API key)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

import aiohttp

from . import __version__
from .core.instance_lock import InstanceLocked
from .core.logs import setup_logging
from .core.models import CAMERA_MOVES, Entry, JobRequest, JobState
from .core.preflight import startup_problems
from .core.settings import DURATIONS, RESOLUTIONS, ConfigError, Settings, load_settings
from .core.video_models import DEFAULT_MODEL, MODEL_KEYS
from .discord_side.setup_wizard import add_arguments as add_setup_arguments

log = logging.getLogger("bot")
CALLER_CWD = "HAILUO_CALLER_CWD"  # set by scripts/start.py: where the operator ran it from


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Hailuo Bot for Discord")
    parser.add_argument("--version", action="version", version=f"hailuo-bot {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start the bot (default)")
    sub.add_parser("worker", help="run jobs only, without a gateway connection (needs DATABASE_URL)")
    setup = sub.add_parser("setup", help="write .env: the Discord token, the Novita key or trial mode")
    add_setup_arguments(setup)
    sync = sub.add_parser("sync", help="register slash commands with Discord")
    sync.add_argument("--guild", type=int, help="sync to this server only (instant) instead of globally")
    sync.add_argument("--clear", action="store_true", help="remove the commands instead")
    check_cmd = sub.add_parser(
        "check", help="run the checks a start runs, plus database and ffmpeg (no network)"
    )
    check_cmd.add_argument(
        "--online", action="store_true", help="also ask Discord and Novita whether the token and key work"
    )
    backup = sub.add_parser("backup", help="copy the database safely, even while the bot runs")
    backup.add_argument(
        "path", nargs="?", help="file or folder to write (default: backups/ beside the database)"
    )
    invite = sub.add_parser("invite", help="print the invite link with the permissions the bot needs")
    invite.add_argument("--guild", type=int, help="preselect this server on Discord's page")
    migrate = sub.add_parser(
        "migrate-to-postgres", help="copy the SQLite database into the PostgreSQL one at DATABASE_URL"
    )
    migrate.add_argument("--from", dest="source", type=Path, help="the SQLite file (default: DATABASE_PATH)")
    gen = sub.add_parser("generate", help="make one video from the command line")
    gen.add_argument("prompt")
    gen.add_argument("--image", type=Path, help="first frame (JPG, PNG or WebP)")
    gen.add_argument("--duration", type=int, choices=DURATIONS, default=6)
    gen.add_argument("--resolution", choices=RESOLUTIONS, default="768P", type=str.upper)
    gen.add_argument("--no-expansion", action="store_true", help="turn off Novita's prompt expansion")
    gen.add_argument("--camera", choices=CAMERA_MOVES, help="a Hailuo camera move appended to the prompt")
    gen.add_argument("--model", choices=MODEL_KEYS, default=DEFAULT_MODEL, help="the video model")
    gen.add_argument("--last-frame", type=Path, help="last frame (needs --image; hailuo-02 only)")
    gen.add_argument("--out", type=Path, default=Path("."), help="output file (.mp4) or folder")
    gen.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    return parser


def caller_path(path: Path) -> Path:
    """A path the operator typed, relative to the folder they typed it in. `scripts/start.py` runs the bot
    from the repository (where `.env` is) and passes the caller's folder in HAILUO_CALLER_CWD."""
    if path.is_absolute():
        return path
    return Path(os.environ.get(CALLER_CWD) or ".") / path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    if command == "setup":  # before the settings: it writes them
        from .discord_side.setup_wizard import run_setup

        return run_setup(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration problem:\n{exc}", file=sys.stderr)
        return 2
    if command in ("run", "sync", "generate") and (problems := startup_problems(settings, command)):
        print("Configuration problem:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    secrets = [
        s.get_secret_value() for s in (settings.discord_token, settings.novita_api_key) if s is not None
    ]
    setup_logging(settings.log_level, settings.log_format, settings.log_file, secrets)
    try:
        if command == "check":
            return asyncio.run(check(settings, online=args.online))
        if command == "backup":
            if settings.database_url is not None:
                print(
                    "The data is in PostgreSQL (DATABASE_URL): back it up with pg_dump, for example "
                    "`pg_dump -Fc -f hailuo.dump <dbname>`, a consistent copy while the bot runs.",
                    file=sys.stderr,
                )
                return 2
            from .core.backup import run_backup

            return run_backup(settings, args.path, caller_path(Path()))
        if command == "invite":
            from .discord_side.invite import invite_text

            try:
                print(invite_text(settings, args.guild))
            except ConfigError as exc:
                print(f"Configuration problem:\n{exc}", file=sys.stderr)
                return 2
            return 0
        if command == "generate":
            args.out = caller_path(args.out)
            args.image = caller_path(args.image) if args.image is not None else None
            return asyncio.run(generate(settings, args))
        if command == "migrate-to-postgres":
            return migrate_to_postgres(settings, args.source)
        from .discord_side.app import run_bot, run_worker, sync_commands  # discord.py loads only when needed

        if command == "sync":
            return asyncio.run(sync_commands(settings, args.guild, clear=args.clear))
        if command == "worker":
            return asyncio.run(run_worker(settings))
        return asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        return 130
    except InstanceLocked as exc:
        print(exc, file=sys.stderr)
        return 2
    except aiohttp.ClientConnectorError as exc:  # no route to Discord: say so instead of a traceback
        print(f"Could not reach Discord ({exc}). Check the network, proxy and firewall.", file=sys.stderr)
        return 1


async def check(settings: Settings, online: bool = False) -> int:
    """Report every problem at once; exit non-zero if any. `online` also asks Discord and Novita."""
    from .core import media
    from .core.store import open_store

    problems = startup_problems(settings, "check")  # exactly what a start refuses, then check's own
    store = open_store(
        settings.database_path, settings.database_url_value, trial=settings.novita_mode == "simulate"
    )
    try:
        await store.open()
        unfinished = await store.unfinished_jobs()
        where = await store.describe()
        print(f"database   ok   {where} ({len(unfinished)} unfinished job(s) to resume)")
    except Exception as exc:
        if settings.database_url is not None:
            problems.append(f"DATABASE_URL: PostgreSQL cannot be reached or migrated: {exc}")
        else:
            problems.append(f"DATABASE_PATH {settings.database_path} cannot be opened: {exc}")
    finally:
        await store.close()
    try:
        exe = media.ffmpeg_exe()
        print(f"ffmpeg     ok   {exe}")
    except media.MediaError as exc:
        problems.append(str(exc.user_message))
    fields = ",".join(settings.novita_image_fields)
    print(
        f"novita     {settings.novita_base_url} · {settings.novita_rate_per_minute}/min · "
        f"{settings.novita_max_in_flight} in flight · image fields {fields}"
    )
    print(
        f"quota      {settings.default_quota_credits} credits per {settings.default_quota_period} by default"
    )
    budget = settings.monthly_budget_usd
    print(
        f"budget     ${budget:.2f} a month per server by default (MONTHLY_BUDGET_USD)"
        if budget
        else "budget     none by default: set MONTHLY_BUDGET_USD, or /quota budget per server"
    )
    if settings.metrics_port is not None:
        print(f"metrics    http://{settings.metrics_host}:{settings.metrics_port}/healthz and /metrics")
    if settings.novita_mode == "simulate":
        print("mode       TRIAL (NOVITA_MODE=simulate): videos are simulated, nothing is sent to Novita")
    if online:
        from .discord_side.online_check import run_online_checks

        token_refused = any(p.startswith("DISCORD_TOKEN") for p in problems)

        for outcome in await run_online_checks(settings):
            if outcome.ok:
                print(f"{outcome.service:<10} ok   {outcome.message}")
            elif outcome.message in problems or (outcome.service == "discord" and token_refused):
                continue  # a missing or malformed secret is already reported above
            else:
                problems.append(outcome.message)
    for problem in problems:
        print(f"problem    {problem}", file=sys.stderr)
    print("All good." if not problems else f"{len(problems)} problem(s).")
    return 1 if problems else 0


def migrate_to_postgres(settings: Settings, source: Path | None) -> int:
    from .core.store.migrate import MigrationRefused, copy_sqlite_to_postgres

    url = settings.database_url_value
    if not url:
        print(
            "Set DATABASE_URL=postgresql://user:password@host:5432/dbname first (the database to copy into).",
            file=sys.stderr,
        )
        return 2
    path = source or settings.database_path
    try:
        report = copy_sqlite_to_postgres(path, url)
    except MigrationRefused as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Copied {path} into PostgreSQL:")
    for line in report.lines():
        print(f"  {line}")
    print("Start the bot with DATABASE_URL set; keep the SQLite file as a backup.")
    return 0


async def generate(settings: Settings, args: argparse.Namespace) -> int:
    from .core import media
    from .core.engine import Engine
    from .core.reporting import ConsoleReporter, cli_error

    if len(args.prompt.strip()) == 0 or len(args.prompt) > 2000:
        print("The prompt must be 1 to 2000 characters.", file=sys.stderr)
        return 2
    if args.resolution == "1080P" and args.duration == 10:
        print(
            "1080P is only available for 6-second videos; use --duration 6 or --resolution 768P.",
            file=sys.stderr,
        )
        return 2
    from .core.video_models import refusal

    last_frame = getattr(args, "last_frame", None)
    problem = refusal(getattr(args, "model", DEFAULT_MODEL), args.image is not None, last_frame is not None)
    if problem:
        print(
            str(problem).replace("`image`", "--image").replace("`last_frame`", "--last-frame"),
            file=sys.stderr,
        )
        return 2
    image = last = None
    for path in (args.image, last_frame):
        if path is None:
            continue
        try:
            data = await asyncio.to_thread(path.read_bytes)
            await media.normalise_image(data)  # refuse a bad image before anything is spent
        except OSError as exc:
            print(f"Cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except media.MediaError as exc:
            print(str(exc.user_message), file=sys.stderr)
            return 2
        image, last = (data, last) if path is args.image else (image, data)
    started = time.monotonic()
    async with Engine(settings, ConsoleReporter(args.out, echo=print)) as runner:
        await runner.start()
        request = JobRequest(
            guild_id=None,
            channel_id=None,
            user_id=0,
            user_name="cli",
            entry=Entry.CLI,
            operator=True,
            prompt=args.prompt,
            duration=args.duration,
            resolution=args.resolution,
            prompt_expansion=not args.no_expansion,
            camera=args.camera,
            image_bytes=image,
            image_name=args.image.name if args.image else None,
            model=getattr(args, "model", DEFAULT_MODEL),
            last_frame_bytes=last,
            last_frame_name=last_frame.name if last_frame else None,
        )
        job, decision = await runner.submit(request)
        if job is None:
            print(str(decision.message), file=sys.stderr)
            return 1
        runner.start_job(job.id)
        try:
            job = await runner.wait_settled(job.id, args.timeout)
        except TimeoutError:
            print(
                "Gave up waiting; the job stays in the database and resumes on the next start.",
                file=sys.stderr,
            )
            return 1
    if job.state != JobState.DELIVERED:
        print(cli_error(job), file=sys.stderr)
        return 1
    print(f"Done in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
