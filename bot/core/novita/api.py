"""`NovitaAPI`: the two calls the runner makes. The HTTP client (`client.py`) and trial mode's stand-in
(`bot/core/simulate.py`) both satisfy it, and mypy checks that they do (`engine.py` assigns either to it)."""

from __future__ import annotations

from typing import Protocol

from .tasks import GenerationRequest, TaskResult


class NovitaAPI(Protocol):
    """Submit a generation task; read a task's result. Failures raise `NovitaError` subclasses."""

    @property
    def base_url(self) -> str: ...

    async def submit(self, request: GenerationRequest) -> str: ...

    async def get_result(self, task_id: str) -> TaskResult: ...
