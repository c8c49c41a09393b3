"""Logging: one line per event, `job=<id>` on every job line, optional JSON and rotating file, no secrets."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path

from . import redaction


class RedactSecrets(logging.Filter):
    """Replace any known secret that slipped into a log record (message, args or traceback) with ***, and a
    piece of one (8 characters or more) left at the end of a token by a cut somewhere."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        redaction.register(*secrets)

    def _clean(self, text: str) -> str:
        return redaction.redact(text, mask="***")

    def filter(self, record: logging.LogRecord) -> bool:
        if redaction.registered():
            record.msg = self._clean(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]  # set
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    level: str = "INFO", fmt: str = "text", file: Path | None = None, secrets: Iterable[str] = ()
) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(file, maxBytes=10 * 1024**2, backupCount=5))
    formatter: logging.Formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    redact = RedactSecrets(secrets)
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        root.addHandler(handler)
    root.setLevel(level)
    # discord.py and aiohttp are chatty at DEBUG; keep them at INFO unless asked otherwise.
    for name in ("discord", "aiohttp"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
