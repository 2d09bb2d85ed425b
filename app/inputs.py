"""Checks made at the door, before a value reaches a parser, a validator or the database.

What PostgreSQL or SQLite would refuse (a NUL in text, an unpaired surrogate, an integer beyond
BIGINT, NaN or ±Infinity in JSON) is found here and refused with a clear message, never a 500.
"""

from __future__ import annotations

import math
import re
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# The ids we hand out: a random UUID as 32 lowercase hex digits (app/ids.py).
ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def is_ascii_digits(text: str) -> bool:
    """Whether `text` is one or more of 0-9. str.isdigit() and int() also take other scripts'
    digits (`１`, `٣`) and isdigit() takes `²`, which int() refuses: a number in a URL or an id is ASCII."""
    return text.isascii() and text.isdigit()


def is_int(value: object) -> bool:
    """Whether `value` is a JSON integer (a bool is an int to Python, not to JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: object) -> bool:
    """Whether `value` could be one of our ids; anything else names nothing, without a query."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text on both databases, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def _pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def json_problem(value: Any, *, int64: bool = False, max_depth: int = 64) -> tuple[str, str] | None:
    """The first value in a JSON document that a database would refuse or store lossily, as
    (JSON Pointer, reason); None when there is none. Iterative, so depth cannot exhaust the stack.

    With `int64`, integers must fit a signed 64-bit column (ids, counters).
    """
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if len(path) > max_depth:
            return _pointer(path), f"nests deeper than {max_depth} levels"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return _pointer(path), problem
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if int64 and not INT64_MIN <= item <= INT64_MAX:
                return _pointer(path), "is outside the 64-bit integer range"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return _pointer(path), "must be a finite number (not NaN or Infinity)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return _pointer(path), "has a key that is not a string"
                problem = text_problem(key)
                if problem:
                    return _pointer([*path, key[:64]]), f"has a key that {problem}"
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, index]) for index, child in enumerate(item))
        else:
            return _pointer(path), f"is not a JSON value ({type(item).__name__})"
    return None


def json_depth_exceeds(text: str | bytes, limit: int) -> bool:
    """Whether a JSON text nests deeper than `limit`, found by counting brackets outside strings,
    before any recursive parser sees it."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:  # the common case, at C speed
        return False
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False
