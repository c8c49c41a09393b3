"""Point an unmodified discord.py at the loopback fake Discord — test harness only.

Put this directory first on PYTHONPATH and set HAILUO_FAKE_DISCORD_URL=http://127.0.0.1:PORT. When discord.py
modules are imported, their hard-coded endpoints are rewritten:

* discord.http.Route.BASE (REST and interaction webhooks; discord.webhook.* use the same Route) -> URL/api/v10
* discord.http._set_api_version -> keeps pointing at the fake
* discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY -> ws://127.0.0.1:PORT/gateway/
* discord.asset.Asset.BASE (avatars, icons) -> URL/cdn

Without HAILUO_FAKE_DISCORD_URL this file does nothing but chain to the next sitecustomize on sys.path.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


def _urls(base: str) -> tuple[str, str, str]:
    base = base.rstrip("/")
    if not base.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise RuntimeError(f"HAILUO_FAKE_DISCORD_URL must be a loopback URL, got {base!r}")
    ws = "ws://" + base.split("://", 1)[1]
    return base + "/api/v10", ws + "/gateway/", base + "/cdn"


def _patch_http(module: ModuleType, api: str) -> None:
    module.Route.BASE = api
    original = module._set_api_version

    def _set_api_version(value: int) -> None:
        original(value)
        module.Route.BASE = api.rsplit("/v", 1)[0] + f"/v{value}"

    module._set_api_version = _set_api_version


def _patch_gateway(module: ModuleType, ws: str) -> None:
    import yarl

    module.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(ws)


def _patch_asset(module: ModuleType, cdn: str) -> None:
    module.Asset.BASE = cdn


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Runs a patch right after the named module finishes executing."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch
        return spec


def install(base: str) -> None:
    api, ws, cdn = _urls(base)
    patches: dict[str, Callable[[ModuleType], None]] = {
        "discord.http": lambda m: _patch_http(m, api),
        "discord.gateway": lambda m: _patch_gateway(m, ws),
        "discord.asset": lambda m: _patch_asset(m, cdn),
    }
    for name, patch in list(patches.items()):
        if name in sys.modules:  # already imported (unlikely this early): patch in place
            patch(sys.modules[name])
            del patches[name]
    sys.meta_path.insert(0, _PatchingFinder(patches))


def _chain_next_sitecustomize() -> None:
    for entry in sys.path:
        directory = os.path.abspath(entry or os.getcwd())
        if directory == _HERE:
            continue
        candidate = os.path.join(directory, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_chained_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                try:
                    spec.loader.exec_module(module)
                except Exception as exc:  # the chained one is not ours to break on
                    print(f"sitecustomize chain: {candidate}: {exc!r}", file=sys.stderr)
            return


_URL = os.environ.get("HAILUO_FAKE_DISCORD_URL")
if _URL:
    install(_URL)
_chain_next_sitecustomize()
