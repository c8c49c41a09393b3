"""What media work can refuse or fail with: one message for the member, one detail for the log."""

from __future__ import annotations

from ..errors import UserFacingError
from ..i18n import Number, Text, _


class MediaError(UserFacingError):
    """A media problem with a message fit to show a Discord member (`user_message`) and a log `detail`."""


class ImageRejected(MediaError):
    """The member's image is unusable."""


class VideoError(MediaError):
    """A video could not be downloaded, probed or re-encoded."""


class FfmpegMissing(MediaError):
    """No working ffmpeg binary."""


def limit_mb(n: int) -> Text:
    """A byte limit as members read it: "25 MB", "7.5 MB" (the decimal mark is the reader's)."""
    mb = n / (1024 * 1024)
    return _("{size} MB", size=Number(mb, 0 if mb == int(mb) else 1))
