"""One error vocabulary: every failure a member may read carries a `Text` for them and a detail for the log.

Media refusals, job and quota refusals and Novita's errors all derive from `UserFacingError`, so the Discord
layer renders `user_message` in the reader's language and logs `detail`, whatever went wrong.
"""

from __future__ import annotations

from .i18n import Text, as_text


class UserFacingError(Exception):
    """A failure with a message fit to show a member (`user_message`, translatable) and a log `detail`
    (English, for moderators and logs; never a secret)."""

    def __init__(self, user_message: Text | str, detail: str = "") -> None:
        self.user_message: Text = as_text(user_message)
        self.detail = detail
        super().__init__(detail or str(self.user_message))

    def __str__(self) -> str:
        return self.detail or str(self.user_message)


class InvalidInput(UserFacingError, ValueError):
    """A value a member or moderator typed that can't be used (a credit limit, a blocklist entry)."""
