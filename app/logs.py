"""Logging for `serve`: every record passes a filter that blanks out bot tokens and API tokens."""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_PATTERNS = (
    re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{30,100}"),  # Telegram bot tokens
    re.compile(r"\bpb_[A-Za-z0-9_-]{20,}"),  # Plugboard API tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
)


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A logging.config dict for uvicorn and the app, with the redacting filter on every handler."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "app.logs.RedactSecrets"}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {**handler, "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            # Query logs carry SQL parameters, bot tokens and webhook secrets among them: never below WARNING.
            "tortoise.db_client": {"level": "WARNING"},
            "aiosqlite": {"level": "WARNING"},
            "asyncpg": {"level": "WARNING"},
        },
    }
