"""Whether a webhook body can be stored as it is, decided at the cost of parsing it.

What no column takes (app.inputs.json_problem: a NUL or an unpaired surrogate in a string or a
key, an integer beyond signed 64 bits, NaN or ±Infinity) can reach the text only in a few ways,
each cheap to spot: an integer or a float as a literal (seen by the decoder's hooks as it parses),
NaN and Infinity as constants (the same), a NUL as the escape \\u0000, and an unpaired surrogate
as a \\uD800-\\uDFFF escape without its other half (strict UTF-8 and JSON refuse both raw). Only
a body with such a suspect is walked value by value, to name the problem.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from app.inputs import INT64_MAX, INT64_MIN, json_problem

# An escaped backslash (so the next character starts no escape), or a surrogate escape:
# group 1 is its first hex digit after D, 8-B for a high half, C-F for a low one.
_ESCAPE = re.compile(r"\\\\|\\u[dD]([0-9a-fA-F])[0-9a-fA-F]{2}")
_HIGH = frozenset("89abAB")
_LOW = frozenset("cdefCDEF")


class _Suspect(Exception):
    pass


def _int(literal: str) -> int:
    value = int(literal)
    if len(literal) > 18 and not INT64_MIN <= value <= INT64_MAX:
        raise _Suspect
    return value


def _float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # a literal too large for a double
        raise _Suspect
    return value


def _constant(name: str) -> float:
    raise _Suspect  # NaN, Infinity, -Infinity


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _unpaired_surrogate_escape(text: str) -> bool:
    low_expected_at = -1
    for match in _ESCAPE.finditer(text):
        half = match.group(1)
        if low_expected_at >= 0:
            if match.start() != low_expected_at or half is None or half not in _LOW:
                return True  # a high half whose low half does not follow
            low_expected_at = -1
        elif half is None or half not in _HIGH and half not in _LOW:
            continue  # an escaped backslash, or \uD0xx-\uD7xx
        elif half in _HIGH:
            low_expected_at = match.end()
        else:
            return True  # a low half with no high half before it
    return low_expected_at >= 0


def _strings_suspect(text: str) -> bool:
    if "\\u" not in text:
        return False
    return "\\u0000" in text or _unpaired_surrogate_escape(text)


def parse(text: str) -> tuple[Any, bool]:
    """The value of a JSON text (ValueError when it is not JSON), and whether it may hold
    something no column takes; when False, it certainly does not."""
    try:
        return _DECODER.decode(text), _strings_suspect(text)
    except _Suspect:
        return json.loads(text), True


def problem(value: Any, max_depth: int) -> str | None:
    """What in a suspect value no column takes, as '<JSON Pointer> <reason>', or None."""
    found = json_problem(value, int64=True, max_depth=max_depth)
    return None if found is None else f"{found[0] or '/'} {found[1]}"
