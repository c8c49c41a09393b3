"""Async client for Novita's MiniMax Hailuo endpoints: submit a task, poll its result.

Which endpoint a request goes to, and which fields it may carry, is the model registry's business
(`video_models.py`); every model shares the task-result endpoint.

Two kinds of failure are kept apart: a task that *ran and failed* is a `TaskResult` with status FAILED;
an HTTP call that failed raises a `NovitaError` subclass. Retries follow one rule: polls are retried freely,
a submit only when it provably never reached the server (or got a 429), because a submit that reached the
server may have created a task and a charge (`NovitaError.maybe_created`).
"""

from .api import NovitaAPI
from .client import NovitaClient
from .errors import (
    OPERATOR_ACTIONS,
    NovitaAccountProblem,
    NovitaAuthError,
    NovitaBadRequest,
    NovitaConnectionError,
    NovitaContentRefused,
    NovitaError,
    NovitaForbidden,
    NovitaMalformedResponse,
    NovitaNoBalance,
    NovitaNotFound,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTimeout,
    safe_reason,
)
from .parsing import parse_task_result
from .tasks import (
    MAX_ETA_S,
    MAX_VIDEO_TTL_S,
    RESULT_PATH,
    SUBMIT_PATH,
    GenerationRequest,
    TaskResult,
    TaskStatus,
    VideoOutput,
)

__all__ = [
    "MAX_ETA_S",
    "MAX_VIDEO_TTL_S",
    "OPERATOR_ACTIONS",
    "RESULT_PATH",
    "SUBMIT_PATH",
    "GenerationRequest",
    "NovitaAPI",
    "NovitaAccountProblem",
    "NovitaAuthError",
    "NovitaBadRequest",
    "NovitaClient",
    "NovitaConnectionError",
    "NovitaContentRefused",
    "NovitaError",
    "NovitaForbidden",
    "NovitaMalformedResponse",
    "NovitaNoBalance",
    "NovitaNotFound",
    "NovitaRateLimited",
    "NovitaServerError",
    "NovitaTimeout",
    "TaskResult",
    "TaskStatus",
    "VideoOutput",
    "parse_task_result",
    "safe_reason",
]
