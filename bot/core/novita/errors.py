"""Novita's failures as exceptions: one class per kind, each with a plain sentence for members, and the
mapping from Novita's documented error reasons to them."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .. import redaction

DETAIL_LIMIT = 500


class NovitaError(Exception):
    """An HTTP call to Novita failed (as opposed to a task that ran and FAILED, which is a TaskResult).

    `detail` is for moderators and logs (server message or truncated body, never the API key);
    `user_message` is one or two plain sentences for a Discord member. `maybe_created` is True when a
    submit may have created a task (and a charge) despite the error: such a submit must not be re-sent.
    """

    default_user_message: ClassVar[str] = (
        "Something went wrong talking to the video service. Please try again later."
    )
    #: True for failures that may go away on their own (rate limits, overload, timeouts, bad gateways).
    transient: ClassVar[bool] = False

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        user_message: str | None = None,
        maybe_created: bool = False,
        operation: str = "request",
    ) -> None:
        self.detail = detail
        self.status = status
        self.reason = reason
        self.request_id = request_id
        self.user_message = user_message or self.default_user_message
        self.maybe_created = maybe_created
        self.operation = operation
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [f"Novita {self.operation} failed"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.reason:
            parts.append(self.reason)
        text = ": ".join(parts)
        if self.detail:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.maybe_created:
            text += " [a task may have been created]"
        return text


class NovitaBadRequest(NovitaError):
    default_user_message = (
        "The video service refused the request as invalid. "
        "Check the prompt, settings and image, then try again."
    )


class NovitaAuthError(NovitaError):
    default_user_message = (
        "The video service rejected the bot's API key, so no videos can be made for now. "
        "The moderators have been told."
    )


class NovitaForbidden(NovitaError):
    default_user_message = (
        "The video service refused access to this model. "
        "The bot's operator needs to check the Novita account."
    )


class NovitaNoBalance(NovitaForbidden):
    default_user_message = (
        "The server's video account is out of credit, so no videos can be made for now. "
        "The moderators have been told."
    )


class NovitaContentRefused(NovitaBadRequest):
    """Novita's content rules refused the prompt (ILLEGAL_PROMPT) or the image (ILLEGAL_IMAGE_CONTENT)."""

    default_user_message = "Novita's content rules refused this request. Change it and try again."


class NovitaAccountProblem(NovitaForbidden):
    """The account needs the operator (API_NOT_ALLOWED, NEED_REAL_NAME_VERIFY, BILLING_AUTH_FAILED)."""

    default_user_message = (
        "The video service can't be used with the bot's account right now. The moderators have been told."
    )


class NovitaNotFound(NovitaError):
    default_user_message = "The video service no longer knows this task."


class NovitaRateLimited(NovitaError):
    default_user_message = "The video service is receiving too many requests. Please try again in a minute."
    transient = True

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(detail, **kwargs)


class NovitaServerError(NovitaError):
    default_user_message = "The video service is having trouble right now. Please try again in a few minutes."
    transient = True


class NovitaTimeout(NovitaError):
    default_user_message = "The video service did not answer in time. Please try again in a few minutes."
    transient = True


class NovitaConnectionError(NovitaError):
    default_user_message = "The bot could not reach the video service. Please try again in a few minutes."
    transient = True

    def __init__(self, detail: str = "", *, reached: bool = True, **kwargs: Any) -> None:
        # `reached` is False only when the request provably never left (connection refused, DNS failure).
        self.reached = reached
        super().__init__(detail, **kwargs)


class NovitaMalformedResponse(NovitaError):
    default_user_message = "The video service sent an answer the bot could not read. Please try again later."
    transient = True


# Novita's documented error reasons that need their own answer, whatever the HTTP status they come with.
_CONTENT_REASONS = {
    "ILLEGAL_PROMPT": "Novita's content rules refused the prompt. Change the wording and try again.",
    "ILLEGAL_IMAGE_CONTENT": "Novita's content rules refused the image. Try a different picture.",
}
_BALANCE_REASONS = frozenset({"BILLING_BALANCE_NOT_ENOUGH", "NOT_ENOUGH_BALANCE"})
# What the operator must do, for the moderators and the log (never shown to members as such).
OPERATOR_ACTIONS = {
    "BILLING_BALANCE_NOT_ENOUGH": "top up the Novita account's balance",
    "NOT_ENOUGH_BALANCE": "top up the Novita account's balance",
    "INVALID_API_KEY": "check NOVITA_API_KEY: Novita says the key is invalid (make a new one in Novita's "
    "key management and restart the bot)",
    "MISSING_API_KEY": "set NOVITA_API_KEY and restart the bot",
    "API_NOT_ALLOWED": "enable this model's API for the Novita account (or switch the model off with "
    "/settings models)",
    "NEED_REAL_NAME_VERIFY": "complete the real-name verification of the Novita account",
    "BILLING_AUTH_FAILED": "check the Novita account's billing",
}
_KEY_REASONS = frozenset({"INVALID_API_KEY", "MISSING_API_KEY"})
_ACCOUNT_REASONS = frozenset({"API_NOT_ALLOWED", "NEED_REAL_NAME_VERIFY", "BILLING_AUTH_FAILED"})
_SAFE_REASON = re.compile(r"[^A-Za-z0-9_.:-]+")


def safe_reason(reason: str | None, limit: int = 64) -> str:
    """An error reason from the network, safe to quote anywhere: word characters only, cut to `limit`."""
    return _SAFE_REASON.sub("_", reason or "").strip("_")[:limit]


def error_for_reason(reason: str | None, detail: str, common: dict[str, Any]) -> NovitaError | None:
    """The error for a documented `reason` (branching on it, not only on the HTTP status), or None."""
    key = (reason or "").strip().upper()
    action = OPERATOR_ACTIONS.get(key)
    if action:  # first, so the cut to the detail limit never drops the action
        detail = redaction.clip(f"operator: {action} — {detail}", DETAIL_LIMIT)
    if key in _BALANCE_REASONS:
        return NovitaNoBalance(detail, **common)
    if key in _CONTENT_REASONS:
        return NovitaContentRefused(detail, user_message=_CONTENT_REASONS[key], **common)
    if key in _KEY_REASONS:
        return NovitaAuthError(detail, **common)
    if key in _ACCOUNT_REASONS:
        return NovitaAccountProblem(detail, **common)
    return None
