"""What a run's record keeps of the run's output (`PluginRun.output`) and error: redacted like logs
(bot tokens, API tokens, the install's secret settings and the run's secret inputs), and bounded:
larger than MAX_OUTPUT_BYTES as compact JSON, it is cut, with a marker saying so. Whatever the
plugin answered, it can be kept: what JSON or a database cannot hold is kept as text."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from typing import Any

from app.logs import REDACTED, redact

MAX_OUTPUT_BYTES = 16 * 1024
MAX_DEPTH = 32
# A secret setting shorter than this is not searched for in the output: "1" would blank every digit.
MIN_SECRET_CHARS = 6
TRUNCATED = "$truncated"
MAX_INT_BITS = 10_000  # about 3,000 digits
# What no database keeps in JSON text: NUL (PostgreSQL's jsonb refuses \u0000) and a lone surrogate
# (UTF-8 has none). Each is kept as U+FFFD, the replacement character.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def stored_output(value: Any, secrets: Collection[str] = ()) -> str | None:
    """The output as the record keeps it, as JSON text; None when there is none."""
    if value is None:
        return None
    shown = [secret for secret in secrets if len(secret) >= MIN_SECRET_CHARS]
    text = json.dumps(_clean(value, shown, 0), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(text.encode("utf-8"))
    if size <= MAX_OUTPUT_BYTES:
        return text
    # Cut to whole characters within the bound. The preview is JSON text written again as a JSON
    # string, its quotes and backslashes escaped once more (up to twice its size): while the marker
    # is over the bound, the preview is cut in the proportion it is over.
    encoded, budget = text.encode("utf-8"), MAX_OUTPUT_BYTES - 256
    while True:
        preview = encoded[:budget].decode("utf-8", errors="ignore")
        marker = json.dumps(
            {TRUNCATED: True, "bytes": size, "preview": preview}, separators=(",", ":"), ensure_ascii=False
        )
        marker_size = len(marker.encode("utf-8"))
        if marker_size <= MAX_OUTPUT_BYTES:
            return marker
        budget = budget * (MAX_OUTPUT_BYTES - 256) // marker_size


def stored_error(error: str | None, secrets: Collection[str] = ()) -> str | None:
    """A run's error as its record keeps it (PluginRun.error, lastError): redacted as its output is."""
    if error is None:
        return None
    return _text(error, [secret for secret in secrets if len(secret) >= MIN_SECRET_CHARS])


def _clean(value: Any, secrets: list[str], depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # Python writes no integer of 4,300+ digits as text
        return value if value.bit_length() <= MAX_INT_BITS else "[integer too large]"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _text(value, secrets)
    if depth >= MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, dict):
        return {_text(str(key), secrets): _clean(item, secrets, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item, secrets, depth + 1) for item in value]
    return _text(str(value), secrets)  # a date, an id: as it reads


def _text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if len(text) < 32 and text.isascii() and text.isalnum():
        return text  # a key, a word, a number: every secret pattern needs a separator or 32 characters
    return _UNSTORABLE.sub("\ufffd", redact(text))
