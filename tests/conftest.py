"""Shared fixtures. Fakes live in tests/fakes/; each test module may add its own fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings, load_settings
from bot.store import Store


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for tests: data under tmp_path, quick polling, no .env from the developer's checkout."""
    monkeypatch.chdir(tmp_path)
    return load_settings(
        discord_token="test-discord-token",
        novita_api_key="test-novita-key",
        database_path=tmp_path / "hailuo.db",
        media_dir=tmp_path / "media",
        poll_min_s=0.05,
        poll_first_s=0.1,
        poll_max_s=0.5,
        novita_rate_per_minute=600,
        novita_request_timeout_s=5,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = Store(settings.database_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
