"""Logging for `serve` and `worker`: every record passes a filter that blanks out bot tokens and
API tokens, in any encoding a URL gives them, and cuts a record's text to a bounded size."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

# A character as it may appear in a logged URL: itself, or percent-encoded once or more times
# (`%3A`, `%253A`, …). Token characters are URL-safe, but nothing stops a client encoding them.
_PERCENT = r"%(?:25)*"


def _either(raw: str, *hex_codes: str) -> str:
    encoded = "|".join(f"{code[0]}[{code[1].upper()}{code[1].lower()}]" for code in hex_codes)
    return rf"(?:{raw}|{_PERCENT}(?:{encoded}))"


_TOKEN_CHAR = _either(r"[A-Za-z0-9_-]", "5F", "2D")
_COLON = _either(":", "3A")
_UNDERSCORE = _either("_", "5F")
_SPACE = _either(r"[ \t+]", "20", "2B")  # a form-encoded space is `+`
_BEARER_CHAR = _either(r"[A-Za-z0-9._~+/=-]", "2B", "2F", "3D", "5F", "2D", "2E", "7E")

SECRET_PATTERNS = (
    re.compile(rf"(?<!%)(?<!%[0-9A-Fa-f])\d{{5,20}}{_COLON}{_TOKEN_CHAR}{{20,100}}"),  # Telegram bot tokens
    re.compile(rf"pb{_UNDERSCORE}{_TOKEN_CHAR}{{20,}}"),  # Plugboard API tokens
    re.compile(rf"(?i)(bearer{_SPACE}+){_BEARER_CHAR}+"),  # whatever follows "Bearer"
    # ?authorization=… in a URL, or in a URL encoded inside another one
    re.compile(rf"(?i)((?:[?&;]|{_PERCENT}(?:3F|26))authorization(?:=|{_PERCENT}3D))(?:[^&;#\s\"'%]|{_PERCENT}(?!26)[0-9A-Fa-f]{{2}})+"),
)
REDACTED = "[redacted]"
# A run of URL characters (a path, a query value): searched once more percent-decoded, for a secret
# encoded in a way the patterns above do not foresee.
_URL_RUN = re.compile(r"[^\s&=?;\"'<>]+")
_DECODINGS = 3

# A record's message, and its exception text, are cut to this many characters.
MAX_RECORD_CHARS = 4096
# Characters a secret (or its encoding) is made of: a cut never leaves part of one behind.
_SECRET_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-:%+.~/=")
_LONGEST_SECRET = 1024


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    if "%" in text:
        text = _URL_RUN.sub(_redact_encoded_run, text)
    return text


def _redact_encoded_run(match: re.Match[str]) -> str:
    run = decoded = match.group(0)
    for _ in range(_DECODINGS):
        if "%" not in decoded:
            break
        decoded = unquote_plus(decoded)
        if any(pattern.search(decoded) for pattern in SECRET_PATTERNS):
            return REDACTED
    return run


def _strip_end(text: str) -> str:
    """`text` without a trailing run of secret characters (up to the longest secret): what may be
    the first part of a secret that a cut split."""
    end = len(text)
    while end > 0 and len(text) - end < _LONGEST_SECRET and text[end - 1] in _SECRET_ALPHABET:
        end -= 1
    return text[:end]


def _strip_start(text: str) -> str:
    start = 0
    while start < len(text) and start < _LONGEST_SECRET and text[start] in _SECRET_ALPHABET:
        start += 1
    return text[start:]


def clean(text: str, limit: int = MAX_RECORD_CHARS) -> str:
    """`text` with its secrets redacted, cut to about `limit` characters with a marker saying how
    many were left out. Only the parts kept are searched, so a huge text costs little."""
    if len(text) <= limit:
        return redact(text)
    head_size, tail_size = limit * 3 // 4, limit - limit * 3 // 4
    # Windows wider than what is kept, cut where no secret can straddle, then redacted whole.
    head = redact(_strip_end(text[: limit + _LONGEST_SECRET]))[:head_size]
    tail = redact(_strip_start(text[-(limit + _LONGEST_SECRET) :]))[-tail_size:]
    cut = len(text) - head_size - tail_size
    return f"{head} … [{cut} characters cut] … {tail}"


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
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
