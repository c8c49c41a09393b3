"""Everything a front end needs, opened and closed in the right order: store, HTTP session, Novita, runner.

The Discord bot, the CLI and the test processes all build the engine the same way, so they behave alike.
"""

from __future__ import annotations

import logging
from types import TracebackType

import aiohttp

from .instance_lock import InstanceLock
from .jobs import JobRunner
from .novita import NovitaAPI, NovitaClient
from .reporting import Reporter
from .settings import Settings
from .simulate import WARNING as TRIAL_WARNING
from .simulate import SimulatedNovita
from .store import open_store

log = logging.getLogger("bot.engine")


class Engine:
    def __init__(self, settings: Settings, reporter: Reporter | None = None, **novita_options: float) -> None:
        self.settings = settings
        trial = settings.novita_mode == "simulate"
        self.store = open_store(settings.database_path, settings.database_url_value, trial=trial)
        # One process per SQLite file; PostgreSQL shares its jobs between processes through leases instead.
        self.lock = InstanceLock(settings.database_path, enabled=settings.database_url is None)
        self._reporter = reporter
        self._novita_options = novita_options
        self.http: aiohttp.ClientSession | None = None
        self.novita: NovitaAPI | None = None
        self._simulator: SimulatedNovita | None = None
        self.runner: JobRunner | None = None

    @property
    def simulated(self) -> bool:
        """Trial mode (NOVITA_MODE=simulate): jobs go to the in-process simulator and are marked simulated."""
        return self.settings.novita_mode == "simulate"

    async def open(self) -> JobRunner:
        """Open the store and the HTTP session and build the runner (not started: call `runner.start()`)."""
        settings = self.settings
        if settings.novita_api_key is None and not self.simulated:
            raise RuntimeError("NOVITA_API_KEY is required")
        self.lock.acquire()  # InstanceLocked when another process runs on this database: refuse at once
        await self.store.open()
        # One shared session; enough connections for many polls in flight, bounded per host.
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300)
        self.http = aiohttp.ClientSession(connector=connector)
        if self.simulated:
            log.warning(TRIAL_WARNING)
            self._simulator = SimulatedNovita(settings.media_dir / "simulated")
            await self._simulator.start()
            self.novita = self._simulator
        else:
            assert settings.novita_api_key is not None
            self.novita = NovitaClient(
                self.http,
                base_url=settings.novita_base_url,
                api_key=settings.novita_api_key.get_secret_value(),
                image_fields=settings.novita_image_fields,
                request_timeout=settings.novita_request_timeout_s,
                **self._novita_options,  # type: ignore[arg-type]  # the client's float timing options
            )
        self.runner = JobRunner(
            store=self.store,
            settings=settings,
            novita=self.novita,
            http=self.http,
            reporter=self._reporter,
        )
        return self.runner

    async def close(self) -> None:
        """Stop the runner first (it may still be writing), then the session, then the store."""
        if self.runner is not None:
            await self.runner.stop()
        if self._simulator is not None:
            await self._simulator.close()
        if self.http is not None:
            await self.http.close()
        await self.store.close()
        self.lock.release()

    async def __aenter__(self) -> JobRunner:
        try:
            return await self.open()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
