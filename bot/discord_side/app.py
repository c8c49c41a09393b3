"""The discord.py Bot: owns the engine (store, HTTP session, runner), loads the cogs, starts and stops.

No privileged intent by default: messages that mention the bot carry their content without the
message-content intent. MESSAGE_CONTENT_INTENT=true asks for it, so that a mention replying to another
member's image can see that image; a start Discord refuses for it stops with one sentence saying where to
turn it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from ..core import metrics
from ..core.engine import Engine
from ..core.i18n import Text, _, as_text
from ..core.instance_lock import InstanceLocked
from ..core.jobs import JobRunner
from ..core.settings import Settings
from ..core.store import Store, open_store
from . import command_sync
from .answers import OOPS, reply
from .delivery import DiscordReporter
from .job_starter import JobStarter
from .translator import CommandTranslator

log = logging.getLogger("bot.app")

EXTENSIONS = (
    "cogs.generate",
    "cogs.about",
    "cogs.mention",
    "cogs.buttons",
    "cogs.jobs",
    "cogs.usage",
    "cogs.quota",
    "cogs.server_settings",
    "cogs.preferences",
)
INTENT_REFUSED = (
    "Discord refused the Message Content intent that MESSAGE_CONTENT_INTENT=true asks for: turn it on in the "
    "Developer Portal → your application → Bot → Privileged Gateway Intents → Message Content Intent, or set "
    "MESSAGE_CONTENT_INTENT=false."
)
SHARDING_REQUIRED = (
    "Discord requires this bot to be sharded: it is in too many servers for one gateway connection. Set "
    "SHARD_COUNT (one shard per 1,000 servers is a good start) and start again."
)
# The bot never joins voice: discord.py's warnings about its missing voice libraries would only confuse.
for _flag in ("warn_nacl", "warn_dave"):
    if hasattr(discord.VoiceClient, _flag):
        setattr(discord.VoiceClient, _flag, False)

LOGIN_REFUSED = (
    "Discord refused DISCORD_TOKEN. Reset the token in the Developer Portal (Bot → Reset Token) and put the "
    "new one in .env."
)


class HailuoTree(app_commands.CommandTree):
    """Every error a member can cause becomes one short ephemeral sentence; the detail goes to the log."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        command = interaction.command.qualified_name if interaction.command else "?"
        text: Text
        if isinstance(error, UserFacingCheck):
            text = error.user_message
        elif isinstance(error, app_commands.MissingPermissions | app_commands.CheckFailure):
            text = _("You don't have permission to use this.")
        elif isinstance(error, app_commands.TransformerError):
            text = _("One of the options isn't valid. Check it and try again.")
        elif isinstance(error, app_commands.CommandOnCooldown):
            text = _("Slow down a little: try again in {seconds} s.", seconds=round(error.retry_after))
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = _("This command works in a server, not in DMs.")
        else:
            log.error("command /%s failed", command, exc_info=error)
            text = OOPS
        await reply(interaction, text)


class StartRefused(Exception):
    """The bot cannot start; the message says why and what to do."""


class UserFacingCheck(app_commands.CheckFailure):
    """A check failure whose message is written for the member."""

    def __init__(self, user_message: Text | str) -> None:
        self.user_message = as_text(user_message)
        super().__init__(str(self.user_message))


class HailuoBot(commands.Bot):
    def __init__(self, settings: Settings, engine: Engine | None, **options: Any) -> None:
        intents = discord.Intents.default()  # no privileged intents (members, presences, message content)…
        intents.message_content = settings.message_content_intent  # …unless the operator opted in
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=HailuoTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            max_messages=200,
            **options,
        )
        self.settings = settings
        self.engine = engine
        self.reporter: DiscordReporter | None = None
        self.starter = JobStarter(self)
        self.gateway = True  # False in `python -m bot worker`: REST only, no gateway connection or cache
        self.metrics_server: metrics.MetricsServer | None = None

    @property
    def runner(self) -> JobRunner:
        if self.engine is None or self.engine.runner is None:
            raise RuntimeError("the job runner is not running")
        return self.engine.runner

    @property
    def store(self) -> Store:
        if self.engine is None:
            raise RuntimeError("the store is not open")
        return self.engine.store

    def token_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.interaction_token_minutes)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CommandTranslator())
        if self.engine is not None:
            runner = await self.engine.open()
            self.reporter = DiscordReporter(self, self.settings, self.engine.store)
            self.reporter.runner = runner
            runner.reporter = self.reporter
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.engine is None:
            return  # `python -m bot sync`: commands only
        if (port := self.settings.metrics_port) is not None:
            s = self.settings
            server = metrics.MetricsServer(s.metrics_host, port, self.health)
            try:
                await server.start()
            except OSError as exc:
                raise StartRefused(
                    f"METRICS_PORT {s.metrics_port} on {s.metrics_host} cannot be used ({exc.strerror}): "
                    "choose a free port, or leave METRICS_PORT empty to serve no metrics."
                ) from None
            self.metrics_server = server
        if self.gateway:
            await self.sync_if_changed()
        # Jobs move at once (REST works from here on); deliveries wait for the guild cache themselves.
        await self.runner.start()

    async def sync_if_changed(self) -> None:
        """Register the slash commands when Discord's copy differs (DEV_GUILD_ID: in that server only).
        A failure is logged as one sentence with its fix; the bot runs on (jobs resume regardless)."""
        guild_id = self.settings.dev_guild_id
        if guild_id:
            self.tree.copy_global_to(guild=discord.Object(guild_id))
        try:
            result = await command_sync.ensure_synced(self, self.tree, self.store, guild_id)
        except (discord.HTTPException, app_commands.AppCommandError) as exc:
            log.error("slash commands: %s", command_sync.failure_text(exc, guild_id))
            return
        log.info("slash commands: %s", result.describe())

    async def health(self) -> tuple[bool, str]:
        """For /healthz: the gateway session is up (a worker has none) and the store answers a query."""
        if self.gateway and not self._gateway_up():
            return False, "not connected to Discord's gateway"
        try:
            await self.store.ping()
        except Exception as exc:
            return False, f"the database does not answer ({type(exc).__name__})"
        return True, "ok"

    def _gateway_up(self) -> bool:
        if self.is_closed() or not self.is_ready():
            return False
        shards = getattr(self, "shards", None)  # AutoShardedBot: every shard of this process
        if isinstance(shards, dict) and shards:
            return all(not shard.is_closed() for shard in shards.values())
        return self.ws is not None and self.ws.open

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands here: mentions are handled by the mention cog's own listener, so discord.py
        must not also parse each mention as an (unknown) command."""

    async def on_ready(self) -> None:
        log.info(
            "connected as %s (%s) to %d server(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds)
        )
        if not self.guilds and self.application_id is not None:
            from .invite import invite_url

            log.warning(
                "the bot is in no server yet: open %s , pick your server and authorise; the commands "
                "appear there at once",
                invite_url(self.application_id),
            )

    async def on_shard_ready(self, shard_id: int) -> None:
        count = sum(1 for g in self.guilds if g.shard_id == shard_id)
        log.info("shard %d of %s ready with %d server(s)", shard_id, self.shard_count, count)

    async def close(self) -> None:
        log.info("shutting down")
        if self.engine is not None and self.engine.runner is not None:
            await self.engine.runner.stop()
        if self.reporter is not None:
            await self.reporter.close()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await super().close()
        if self.engine is not None:
            await self.engine.close()


class ShardedHailuoBot(HailuoBot, commands.AutoShardedBot):
    """The same bot on SHARD_COUNT gateway connections (SHARD_IDS of them in this process), each carrying
    the servers Discord assigns to its shard. Everything else is per job in the store, so shards may live in
    different processes."""

    def __init__(self, settings: Settings, engine: Engine | None) -> None:
        shard_ids = list(settings.shard_ids) if settings.shard_ids else None
        super().__init__(settings, engine, shard_count=settings.shard_count, shard_ids=shard_ids)


def make_bot(settings: Settings, engine: Engine | None) -> HailuoBot:
    """Sharded when SHARD_COUNT is set; otherwise one gateway connection, as always."""
    if settings.shard_count is None:
        return HailuoBot(settings, engine)
    return ShardedHailuoBot(settings, engine)


def _token(settings: Settings) -> str:
    assert settings.discord_token is not None
    return settings.discord_token.get_secret_value()


async def run_bot(settings: Settings) -> int:
    if problem := settings.shard_problem:
        print(problem, file=sys.stderr)
        return 2
    engine = Engine(settings)
    try:
        engine.lock.acquire()  # before logging in: a second process on this database stops at once
    except InstanceLocked as exc:
        print(exc, file=sys.stderr)
        return 2
    bot = make_bot(settings, engine)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on Windows
            loop.add_signal_handler(sig, lambda: stopping.append(asyncio.create_task(bot.close())))
    async with bot:
        try:
            await bot.start(_token(settings))
        except discord.LoginFailure:
            print(LOGIN_REFUSED, file=sys.stderr)
            return 2
        except StartRefused as exc:
            print(exc, file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:  # the portal's toggle is off (gateway close 4014)
            print(INTENT_REFUSED, file=sys.stderr)
            return 2
        except discord.ConnectionClosed as exc:
            if exc.code != 4011:  # 4011: too many servers for one connection
                raise
            print(SHARDING_REQUIRED, file=sys.stderr)
            return 2
    if stopping:
        await asyncio.gather(*stopping, return_exceptions=True)
    return 0


async def sync_commands(settings: Settings, guild_id: int | None, clear: bool = False) -> int:
    """Register (or with `clear`, remove) the slash commands now: globally, or in one server at once."""
    bot = HailuoBot(settings, engine=None)
    # Remembers what was registered, so the next start sends nothing.
    store: Store | None = None
    opened = open_store(settings.database_path, settings.database_url_value)
    try:
        await opened.open()
        store = opened
    except Exception as exc:  # the sync works without it; the next start then registers once more
        log.warning("the database could not be opened (%s); syncing without remembering it", exc)
    try:
        async with bot:
            try:
                await bot.login(_token(settings))
            except discord.LoginFailure:
                print(LOGIN_REFUSED, file=sys.stderr)
                return 2
            guild = discord.Object(guild_id) if guild_id else None
            if clear:
                bot.tree.clear_commands(guild=guild)
            elif guild is not None:
                bot.tree.copy_global_to(guild=guild)
            try:
                result = await command_sync.ensure_synced(bot, bot.tree, store, guild_id, force=True)
            except (discord.HTTPException, app_commands.AppCommandError) as exc:
                print(command_sync.failure_text(exc, guild_id), file=sys.stderr)
                return 1
    finally:
        if store is not None:
            await store.close()
    where = f"server {guild_id}" if guild_id else "all servers (members may need to restart Discord)"
    names = ", ".join(result.names) or "none"
    print(f"Synced {len(result.names)} command(s) to {where}: {names}")
    return 0


WORKER_NEEDS_POSTGRES = (
    "`python -m bot worker` shares the jobs of other processes through PostgreSQL: set DATABASE_URL. "
    "With the SQLite file, `python -m bot` alone runs every job."
)


async def run_worker(settings: Settings) -> int:
    """Run jobs without a gateway connection: claim, poll, download and deliver over Discord's REST API
    (the interaction token while it lives, then the bot token), beside one or more `python -m bot`."""
    if settings.database_url is None:
        print(WORKER_NEEDS_POSTGRES, file=sys.stderr)
        return 2
    bot = HailuoBot(settings, Engine(settings))
    bot.gateway = False
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on Windows
            loop.add_signal_handler(sig, stop.set)
    async with bot:
        try:
            await bot.login(_token(settings))  # REST only; setup_hook opens the engine and starts the runner
        except discord.LoginFailure:
            print(LOGIN_REFUSED, file=sys.stderr)
            return 2
        log.info("worker %s running jobs (no gateway connection)", bot.runner.owner)
        await stop.wait()
        await bot.close()
    return 0
