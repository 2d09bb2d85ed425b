"""Hypothesis strategies for hostile values, and the encoders that put them on the wire.

Values are plain Python JSON values, with three additions that `json.dumps` cannot carry:

- `RawJSON`: JSON text spliced in as is: nesting deeper than Python's recursion allows, tokens
  such as `NaN`, duplicate keys;
- `Ref`: a name resolved, when the request is sent, to a real id, slug or token of the test's
  world, so the happy paths run too;
- floats `nan`/`inf` and strings with lone surrogates, which `to_json` writes as the raw tokens
  `NaN`/`Infinity` and as `\\ud800` escapes (httpx cannot encode a lone surrogate itself).

`describe` gives any value a short repr, so a failing example of a megabyte stays readable.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

# The columns our values end up in are 32 (ids), 64 (slugs, categories, keys), 128 (names),
# 255/256 (storage keys, tokens) and 320 (emails) characters long: probe each side of them.
COLUMN_LENGTHS = (0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 319, 320, 321)
# Bytes on the wire near the HTTP body limit (1,000,000) and the webhook's (256,000), and beyond.
HUGE_LENGTHS = (4_096, 65_536, 255_000, 900_000, 1_000_001)

INT_EDGES = (
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**53,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    2**70,
    -(2**70),
    10**30,
    10**70,
)
FLOAT_EDGES = (0.0, -0.0, 0.5, 1e308, -1e308, 5e-324, 1e-320, 2.0**63, math.nan, math.inf, -math.inf)

ODD_CHARACTERS = (
    "\x00",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\u202e",
    "\u0301",
    "\U0001f600",
    "\x7f",
    "\n",
    "\\",
    '"',
    "%00",
    "'",
    "{first_name}",
    "{0}",
    "{first_name!r:>99999}",
    "$",
    "\t",
    "\u2028",
)


@dataclass(frozen=True)
class RawJSON:
    """JSON text sent as written; `graphql` is the same value as a GraphQL literal, if it has one."""

    text: str
    graphql: str | None = None
    label: str = "raw"

    def __repr__(self) -> str:
        return f"RawJSON<{self.label}, {len(self.text)} chars>"


@dataclass(frozen=True)
class Ref:
    """A name of something real in the test's world, resolved when the request is made."""

    name: str

    def __repr__(self) -> str:
        return f"Ref({self.name})"


def describe(value: Any, limit: int = 80) -> str:
    """A short repr of any value: long strings and containers are summarised, odd characters named."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        odd = sorted({c for c in value if c in ODD_CHARACTERS or not c.isprintable()})
        return f"str(len={len(value)}, starts={value[:24]!r}, odd={odd[:6]!r})"
    if isinstance(value, list):
        if len(value) <= 6:
            return "[" + ", ".join(describe(v, limit) for v in value) + "]"
        kinds = sorted({type(v).__name__ for v in value})
        return f"list(len={len(value)}, types={kinds}, first={describe(value[:3], limit)})"
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{describe(k, 30)}: {describe(v, limit)}" for k, v in items[:6])
        return "{" + shown + (f", … {len(items)} keys" if len(items) > 6 else "") + "}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**20:
        return f"int({value.bit_length()} bits)"
    return repr(value)


def scaled(examples: int) -> int:
    """The suite's number of examples times HOSTILE_SCALE (a soak before a release takes more)."""
    return max(1, int(examples * float(os.environ.get("HOSTILE_SCALE", "1"))))


def generated_settings(examples: int) -> settings:
    """Hypothesis settings for the generated suites: the same examples on every run (CI can
    reproduce any failure), no deadline (a live server over HTTP is not a pure function), and no
    shrinking by default, since each step of it is a round trip; the failure message names the
    call in full instead. HOSTILE_SCALE=<factor> scales the examples, HOSTILE_SHRINK=1 shrinks.
    """
    phases = [Phase.explicit, Phase.generate]
    if os.environ.get("HOSTILE_SHRINK") == "1":
        phases.append(Phase.shrink)
    return settings(
        max_examples=scaled(examples),
        deadline=None,
        derandomize=True,
        database=None,
        phases=phases,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one app per test, shared by its examples on purpose
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def report_or_fail(subject: str, problems: list[str]) -> None:
    """Fails with the problems found; with HOSTILE_REPORT=<file>, appends them there and goes on,
    to survey every defect in one run instead of stopping at the first."""
    if not problems:
        return
    message = subject + "\n" + "\n".join(problems)
    report = os.environ.get("HOSTILE_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps({"subject": subject, "problems": problems}) + "\n")
        return
    raise AssertionError(message)


# --- encoding -----------------------------------------------------------------------------------


def to_json(value: Any, resolve: Callable[[Ref], Any] | None = None) -> str:
    """JSON text with NaN/Infinity as bare tokens and non-ASCII as escapes (lone surrogates too)."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, Ref):
        if resolve is None:
            raise ValueError(f"unresolved {value!r}")
        return to_json(resolve(value), resolve)
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v, resolve)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v, resolve) for v in value) + "]"
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def to_graphql(value: Any, resolve: Callable[[Ref], Any] | None = None) -> str | None:
    """The value as a GraphQL literal, or None when GraphQL has no literal for it (NaN, odd keys)."""
    if isinstance(value, RawJSON):
        return value.graphql
    if isinstance(value, Ref):
        if resolve is None:
            raise ValueError(f"unresolved {value!r}")
        return to_graphql(resolve(value), resolve)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)  # GraphQL string escapes are JSON's
    if isinstance(value, (list, tuple)):
        items = [to_graphql(v, resolve) for v in value]
        return None if any(i is None for i in items) else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            literal = to_graphql(item, resolve)
            if literal is None or not GRAPHQL_NAME.fullmatch(str(key)):
                return None
            parts.append(f"{key}: {literal}")
        return "{" + ", ".join(parts) + "}"
    return None


# --- strategies ---------------------------------------------------------------------------------

# The strategy builders below are cached: each strategy is built once and drawn from many times,
# since building one costs hypothesis more than drawing a value from it.


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen in proportion to its weight. (`st.one_of` drops repeated
    branches, so repeating a strategy there does not weigh it.)"""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


def _sized(length: int, unit: str) -> str:
    return (unit * (length // len(unit) + 1))[:length]


@functools.cache
def strings_at_lengths(lengths: tuple[int, ...] = COLUMN_LENGTHS) -> st.SearchStrategy[str]:
    """Strings of an exact length around a column limit, made of ASCII, multi-byte or odd units."""
    units = st.sampled_from(["a", "é", "\U0001f600", "0123456789abcdef", "x\x00", "a\ud800"])
    return st.builds(_sized, st.sampled_from(lengths), units)


def _huge(wire_bytes: int, unit: str) -> str:
    """A string that takes about `wire_bytes` once JSON-escaped (é is six bytes there: \\u00e9)."""
    escaped = len(json.dumps(unit, ensure_ascii=True)) - 2
    return _sized(wire_bytes * len(unit) // escaped, unit)


@functools.cache
def huge_strings() -> st.SearchStrategy[str]:
    units = st.sampled_from(["x", "é", "ab\x00", "\ud800z"])
    return st.builds(_huge, st.sampled_from(HUGE_LENGTHS), units)


@functools.cache
def odd_strings() -> st.SearchStrategy[str]:
    """Short strings with NUL, lone surrogates and other characters that break careless code."""
    base = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
    return st.one_of(
        st.sampled_from(ODD_CHARACTERS),
        st.builds(lambda a, c, b: a + c + b, base, st.sampled_from(ODD_CHARACTERS), base),
        st.text(max_size=40),
        st.sampled_from(["", " ", "   ", "null", "undefined", "0", "-1", "NaN", "true", "{}", "[]"]),
    )


@functools.cache
def hostile_strings() -> st.SearchStrategy[str]:
    return weighted((4, odd_strings()), (2, strings_at_lengths()), (1, huge_strings()))


@functools.cache
def hex_ids() -> st.SearchStrategy[str]:
    """Strings shaped like our ids (32 hex digits) and near misses of that shape."""
    hex_digits = "0123456789abcdef"
    return st.one_of(
        st.text(alphabet=hex_digits, min_size=32, max_size=32),
        st.text(alphabet=hex_digits + "ABCDEF", min_size=31, max_size=33),
        st.text(alphabet=hex_digits, min_size=32, max_size=32).map(lambda s: s[:31] + "\x00"),
        st.text(alphabet=hex_digits, min_size=32, max_size=32).map(lambda s: s + "\ud800"),
        st.text(alphabet=hex_digits, min_size=40, max_size=40),
    )


@functools.cache
def hostile_ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(INT_EDGES), st.integers(), st.integers(-(2**80), 2**80))


@functools.cache
def hostile_floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=True, allow_infinity=True))


def _deep(kind: str, depth: int) -> RawJSON:
    if kind == "array":
        text = "[" * depth + "]" * depth
        return RawJSON(text, text, f"array nested {depth} deep")
    return RawJSON(
        '{"a":' * depth + "1" + "}" * depth, "{a: " * depth + "1" + "}" * depth, f"object nested {depth} deep"
    )


@functools.cache
def deep_json() -> st.SearchStrategy[RawJSON]:
    """Nesting just under and over the limits (config depth 32, inputs 64), deep enough to recurse away."""
    return st.builds(
        _deep,
        st.sampled_from(["array", "object"]),
        st.sampled_from([31, 32, 33, 63, 64, 65, 200, 1_000, 2_000, 50_000]),
    )


def _mixed_array(length: int, duplicate: bool) -> list[Any]:
    """A large array of mixed item types: what makes jsonschema's uniqueItems compare every pair."""
    items: list[Any] = ["x", *range(length)]
    if duplicate:
        items.append(length // 2)
    return items


@functools.cache
def large_arrays() -> st.SearchStrategy[list[Any]]:
    return st.one_of(
        st.builds(_mixed_array, st.sampled_from([100, 1_000, 5_000, 20_000]), st.booleans()),
        st.builds(lambda n: list(range(n)), st.sampled_from([1_000, 20_000, 100_000])),
        st.builds(lambda n: [{"a": i} for i in range(n)], st.sampled_from([1_000, 10_000])),
    )


RAW_TOKENS = (
    RawJSON("NaN", None, "NaN token"),
    RawJSON("Infinity", None, "Infinity token"),
    RawJSON("-Infinity", None, "-Infinity token"),
    RawJSON('{"a": 1, "a": 2}', None, "duplicate keys"),
    RawJSON("1e400", "1e400", "float overflow"),
    RawJSON("-0", "-0", "negative zero"),
    RawJSON("1" + "0" * 5_000, "1" + "0" * 5_000, "5000-digit integer"),
)


@functools.cache
def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), hostile_ints(), hostile_floats(), odd_strings(), strings_at_lengths())


@functools.cache
def json_values(keys: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """Any JSON value, hostile at every level: odd keys and scalars, deep, large, raw tokens."""
    keys = keys if keys is not None else st.one_of(odd_strings(), st.sampled_from(["a", "b"]))
    small = st.recursive(
        scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=12,
    )
    return weighted(
        (8, small), (1, deep_json()), (1, large_arrays()), (1, st.sampled_from(RAW_TOKENS)), (1, huge_strings())
    )


@functools.cache
def plausible_values() -> st.SearchStrategy[Any]:
    """Values a setting could well hold, so that some configs pass and the happy path runs too."""
    return st.one_of(
        st.booleans(),
        st.integers(1, 400),
        st.text(min_size=1, max_size=30),
        st.lists(st.integers(-(10**13), 10**13), max_size=5, unique=True),
    )


@functools.cache
def configs(settings_keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Plugin configs: objects of real setting names with hostile (or plausible) values, and anything else."""
    key = weighted((3, st.sampled_from(settings_keys)), (1, odd_strings()))
    edges = st.sampled_from(FLOAT_EDGES + INT_EDGES)  # NaN, ±Infinity, beyond 64 bits: straight into a setting
    value = weighted((2, json_values()), (2, plausible_values()), (1, edges))
    as_object = st.dictionaries(key, value, max_size=4)
    return weighted((3, as_object), (1, json_values()))
