"""Logging for `serve` and `worker`: every record passes a filter that blanks out bot tokens and
API tokens, in any encoding a URL gives them, and cuts a record's text to a bounded size."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any
from urllib.parse import unquote_plus

# A character as it may appear in a logged URL: itself, or percent-encoded once or more times
# (`%3A`, `%253A`, …), also in JavaScript's `escape()` form (`%u003A`), in either case.
_PERCENT = r"%(?:25)*"


def _either(raw: str, *hex_codes: str) -> str:
    encoded = "|".join(f"(?:[uU]00)?{code[0]}[{code[1].upper()}{code[1].lower()}]" for code in hex_codes)
    return rf"(?:{raw}|{_PERCENT}(?:{encoded}))"


_TOKEN_CHAR = _either(r"[A-Za-z0-9_-]", "5F", "2D")
# A colon, also the fullwidth one (U+FF1A): raw, as `%uFF1A`, as UTF-8 percent-encoded (`%EF%BC%9A`),
# or as uvicorn logs raw UTF-8 bytes of a path (read as Latin-1: `ï¼\x9a`).
_FULLWIDTH_COLON = (
    rf"(?:\uff1a|{_PERCENT}[uU][fF][fF]1[aA]|(?i:{_PERCENT}EF{_PERCENT}BC{_PERCENT}9A)|\u00ef\u00bc\u009a)"
)
_COLON = rf"(?:{_either(':', '3A')}|{_FULLWIDTH_COLON})"
_UNDERSCORE = _either("_", "5F")
_SPACE = _either(r"[ \t+]", "20", "2B")  # a form-encoded space is `+`
_BEARER_CHAR = _either(r"[A-Za-z0-9._~+/=-]", "2B", "2F", "3D", "5F", "2D", "2E", "7E")
# A secret on its own, without what usually announces it: the 43 characters after `pb_`, the 35 of
# a bot token after its colon, a webhook secret. A run of 32 to 64 URL-safe characters standing
# alone (not part of a `%XX`), with upper and lower case letters in it: ids are lowercase hex, and
# names are rarely so long.
_LONE_SECRET = (
    rf"(?<![A-Za-z0-9_%-])(?<!%[0-9A-Fa-f])(?=(?:{_TOKEN_CHAR}){{0,63}}?[A-Z])(?=(?:{_TOKEN_CHAR}){{0,63}}?[a-z])"
    rf"(?:{_TOKEN_CHAR}){{32,64}}(?![A-Za-z0-9_-])"
)

SECRET_PATTERNS = (
    re.compile(rf"(?<!%)(?<!%[0-9A-Fa-f])\d{{5,20}}{_COLON}{_TOKEN_CHAR}{{20,100}}"),  # Telegram bot tokens
    re.compile(rf"(?i:pb){_UNDERSCORE}{_TOKEN_CHAR}{{20,}}"),  # Plugboard API tokens, `PB_…` too
    re.compile(rf"(?i)(bearer{_SPACE}+){_BEARER_CHAR}+"),  # whatever follows "Bearer"
    # ?authorization=… in a URL, or in a URL encoded inside another one
    re.compile(
        rf"(?i)((?:[?&;]|{_PERCENT}(?:3F|26))authorization(?:=|{_PERCENT}3D))(?:[^&;#\s\"'%]|{_PERCENT}(?!26)[0-9A-Fa-f]{{2}})+"
    ),
    re.compile(_LONE_SECRET),
)
REDACTED = "[redacted]"
# A run of URL characters (a path, a query value) with `%` or non-ASCII characters in it: searched
# again as it reads once decoded, for a secret encoded in a way the patterns above do not foresee.
_URL_RUN = re.compile(r"[^\s&=?;\"'<>]+")
_DECODINGS = 3
_JS_ESCAPE = re.compile(r"%[uU]([0-9A-Fa-f]{4})")

# A record's message, and its exception text, are cut to this many characters.
MAX_RECORD_CHARS = 4096
# Characters a secret (or its encoding) is made of: a cut never leaves part of one behind.
_SECRET_ALPHABET = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-:%+.~/=\uff1a\u00ef\u00bc\u009a"
)
_LONGEST_SECRET = 1024


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    if "%" in text or not text.isascii():
        text = _URL_RUN.sub(_redact_encoded_run, text)
    return text


def _redact_encoded_run(match: re.Match[str]) -> str:
    run = decoded = match.group(0)
    if run.isascii() and "%" not in run:
        return run
    for _ in range(_DECODINGS + 1):
        if any(pattern.search(reading) for reading in _readings(decoded) for pattern in SECRET_PATTERNS):
            return REDACTED
        if "%" not in decoded:
            break
        decoded = unquote_plus(_JS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), decoded))
    return run


def _readings(text: str) -> list[str]:
    """How `text` may read to whatever consumes it: as it is, with compatibility characters made
    plain (NFKC: fullwidth `：` is `:`), and with raw UTF-8 bytes that were logged as Latin-1
    read as UTF-8 again."""
    if text.isascii():
        return [text]
    readings = [text, unicodedata.normalize("NFKC", text)]
    try:
        readings.append(unicodedata.normalize("NFKC", text.encode("latin-1").decode("utf-8")))
    except UnicodeError:
        pass
    return readings


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
