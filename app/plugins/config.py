"""Validating an install's config against its plugin's JSON Schema (Draft 2020-12).

Validation has a bounded cost whatever the caller sends and whatever the plugin's schema says:
the config's size, its array and object lengths and its nesting are checked first, in one walk
that stops at the first problem, before anything copies or validates it; and `uniqueItems` is a
linear hash-based check, not jsonschema's pairwise comparison (quadratic on mixed-type arrays).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from app.errors import BadUserInput, FieldError
from app.inputs import json_problem
from app.plugins.secrets import check_secrets, secret_keys


@dataclass(frozen=True)
class ConfigLimits:
    max_bytes: int = 65_536  # the config as compact UTF-8 JSON
    max_items: int = 1_000  # in any one array, or members of any one object
    max_depth: int = 32  # nested arrays and objects, the config itself being the first


DEFAULT_LIMITS = ConfigLimits()


@dataclass(frozen=True)
class Subject:
    """What is validated, as its errors name it: an install's config, or a run's input."""

    name: str
    invalid: str
    member: str  # what one of its properties is called


CONFIG = Subject("Config", "Invalid plugin config", "setting")
INPUT = Subject("Input", "Invalid input", "field")
MAX_DEPTH = DEFAULT_LIMITS.max_depth
MAX_REPORTED_ERRORS = 50
MAX_MESSAGE_CHARS = 200


def _pointer(parts: Sequence[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _printable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Safe to show and to log: no NUL or lone surrogate, and short."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- limits, checked before anything else looks at the config --------------------------------


# A path as a linked list, (parent, key), built only into a pointer when a problem is found.
_PathNode = tuple[Any, str | int] | None


def _node_pointer(node: _PathNode) -> str:
    parts: list[str | int] = []
    while node is not None:
        node, key = node
        parts.append(key)
    return _printable(_pointer(parts[::-1]))


def limit_problem(config: Any, limits: ConfigLimits = DEFAULT_LIMITS) -> FieldError | None:
    """The first way `config` exceeds `limits`, or None. Iterative, and it visits no more values
    than `limits.max_bytes` of JSON can hold, so its own cost is bounded too."""
    size = 0  # a lower bound of the compact JSON's length, grown as values are visited
    stack: list[tuple[Any, int, _PathNode]] = [(config, 1, None)] if isinstance(config, (dict, list)) else []
    while stack:
        value, depth, node = stack.pop()
        if depth > limits.max_depth:
            return FieldError(_node_pointer(node), f"nests deeper than {limits.max_depth} levels")
        if len(value) > limits.max_items:
            noun = "members" if isinstance(value, dict) else "items"
            return FieldError(_node_pointer(node), f"has {len(value)} {noun}; at most {limits.max_items} are allowed")
        size += 1 + len(value)  # brackets and commas
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            if isinstance(key, str):
                size += len(key) + 3
            elif isinstance(value, dict):
                return FieldError(_node_pointer(node), "has a key that is not a string")
            if isinstance(child, str):
                size += len(child) + 2
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (node, key)))
            else:
                size += 1
        if size > limits.max_bytes:
            return FieldError("", f"is larger than {limits.max_bytes} bytes as JSON")
    return None


def _clean_json(config: Any) -> str | None:
    """The config as compact JSON when it certainly holds no NaN, ±Infinity, NUL or lone
    surrogate (found at C speed); None when it might, for json_problem to say where."""
    try:
        text = json.dumps(config, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    return None if "\\u0000" in text else text


def checked_json(config: Any, limits: ConfigLimits = DEFAULT_LIMITS, subject: Subject = CONFIG) -> str:
    """The config as compact JSON, once it is known to be within the limits and to hold nothing a
    database would refuse or store lossily (NaN, ±Infinity, NUL, a lone surrogate); otherwise
    BadUserInput with a JSON Pointer to the first problem."""
    problem = limit_problem(config, limits)
    if problem is not None:
        raise BadUserInput(f"{subject.name} too large: {problem.path or '/'} {problem.message}", [problem])
    text = _clean_json(config)
    if text is None:
        text = _json_or_raise(config, limits.max_depth, subject)
    if len(text) > limits.max_bytes / 4 and len(text.encode("utf-8")) > limits.max_bytes:
        error = FieldError("", f"is larger than {limits.max_bytes} bytes as JSON")
        raise BadUserInput(f"{subject.name} too large: / {error.message}", [error])
    return text


def _json_or_raise(config: Any, max_depth: int, subject: Subject) -> str:
    """The config as JSON when the fast check refused it; BadUserInput naming what JSON cannot hold."""
    found = json_problem(config, max_depth=max_depth)
    if found is None:  # a backslash before "u0000" in some string, or an integer of 4,300+ digits
        try:
            return json.dumps(config, separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            found = ("", "cannot be written as JSON")
    path, reason = _printable(found[0]), found[1]
    raise BadUserInput(f"{subject.invalid}: {path or '/'}: {reason}", [FieldError(path, reason)])


# --- uniqueItems in linear time ---------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A hashable form under which two JSON values are equal exactly when JSON Schema calls them
    equal: 1 and 1.0 are, true and 1 are not, objects compare by value whatever their key order."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)  # equal numbers hash equally in Python, 1 and 1.0 included
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, Mapping):
        return ("o", frozenset((key, canonical(child)) for key, child in value.items()))
    if isinstance(value, Sequence):
        return ("a", tuple(canonical(child) for child in value))
    return ("x", value)


def first_duplicate(items: Sequence[Any]) -> tuple[int, int] | None:
    """The indexes of the first item equal to an earlier one, or None when all are unique."""
    seen: dict[Any, int] = {}
    for index, item in enumerate(items):
        earlier = seen.setdefault(canonical(item), index)
        if earlier != index:
            return earlier, index
    return None


def _unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if unique and validator.is_type(instance, "array"):
        duplicate = first_duplicate(instance)
        if duplicate is not None:
            yield ValidationError(f"has non-unique elements (items {duplicate[0]} and {duplicate[1]} are equal)")


# --- the validator ----------------------------------------------------------------------------


def _fill_defaults(
    validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if isinstance(subschema, dict) and "default" in subschema and name not in instance:
                instance[name] = copy.deepcopy(subschema["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_FillingValidator = validators.extend(
    Draft202012Validator, {"properties": _fill_defaults, "uniqueItems": _unique_items}
)

# The one format a setting is checked by: "time-zone", an IANA name the zone database has.
# (Other formats stay annotations, as Draft 2020-12 makes them by default.)
FORMATS = FormatChecker(formats=())


@FORMATS.checks("time-zone")
def _is_time_zone(value: object) -> bool:
    return not isinstance(value, str) or value in _zone_names()


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown keys refused in every object that lists its properties."""
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed_value(key, value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed and "patternProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def _closed_value(key: str, value: Any) -> Any:
    if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
        return {name: _closed(sub) for name, sub in value.items()}
    if key in ("items", "additionalProperties", "not", "if", "then", "else", "contains") and isinstance(value, dict):
        return _closed(value)
    if key in ("allOf", "anyOf", "oneOf", "prefixItems") and isinstance(value, list):
        return [_closed(sub) for sub in value]
    return value


def _value_free(error: ValidationError) -> str:
    """What is wrong, in words that never quote the value: for secrets, and for the config as a
    whole when it holds secrets (jsonschema's own messages start with the instance's repr)."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        return f"must be of type {' or '.join(map(str, expected)) if isinstance(expected, list) else expected}"
    if rule in ("minLength", "maxLength"):
        return f"must be {'at least' if rule == 'minLength' else 'at most'} {expected} characters long"
    if rule == "pattern":
        return "does not match the required pattern"
    if rule in ("enum", "const"):
        return "is not one of the allowed values"
    return f"is not valid ({_printable(str(rule), 40)})"


# The parameter each keyword's value is sent as, beside the message (named as Ajv names them), so
# that a client words its own message: {"keyword": "minLength", "params": {"limit": 16}}.
_PARAM_OF_KEYWORD = {
    **dict.fromkeys(
        (
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "minProperties",
            "maxProperties",
            "multipleOf",
        ),
        "limit",
    ),
    "type": "type",
    "pattern": "pattern",
    "enum": "allowedValues",
    "const": "allowedValue",
}


def _params(error: ValidationError) -> dict[str, Any]:
    """The failed keyword's parameters, from the schema (never from the value, which may be a secret)."""
    name = _PARAM_OF_KEYWORD.get(str(error.validator))
    return {} if name is None else {name: error.validator_value}


def _field_errors(
    error: ValidationError, secrets: frozenset[str] = frozenset(), subject: Subject = CONFIG
) -> list[FieldError]:
    path = list(error.absolute_path)
    keyword = _printable(str(error.validator), 40)
    if error.validator == "required" and isinstance(error.validator_value, list) and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [
            FieldError(
                _printable(_pointer([*path, name])), "is required", keyword, {"missingProperty": _printable(name)}
            )
            for name in missing
        ]
    if (
        error.validator == "additionalProperties"
        and isinstance(error.instance, dict)
        and isinstance(error.schema, dict)
    ):
        known = set(error.schema.get("properties", {}))
        return [
            FieldError(
                _printable(_pointer([*path, name])),
                f"is not a known {subject.member}",
                keyword,
                {"additionalProperty": _printable(name)},
            )
            for name in sorted(error.instance)
            if name not in known
        ]
    if secrets and (not path or path[0] in secrets):
        return [FieldError(_printable(_pointer(path)), _value_free(error), keyword, _params(error))]
    return [FieldError(_printable(_pointer(path)), _printable(error.message), keyword, _params(error))]


def check_schema(schema: dict[str, Any]) -> None:
    """Raises when the schema is not valid JSON Schema, or marks `writeOnly` (a secret setting)
    anything but a top-level property, or gives a secret a default."""
    Draft202012Validator.check_schema(schema)
    check_secrets(schema)


def check_defaults(schema: dict[str, Any]) -> None:
    """Raises BadUserInput when a top-level property's default does not validate against that
    property's schema. Unlike validating `{}`, it lets a plugin require settings that have no
    default (a URL, a secret): such an install needs its user's config."""
    properties = schema.get("properties") or {}
    defaults = {name: sub["default"] for name, sub in properties.items() if isinstance(sub, dict) and "default" in sub}
    shared: dict[str, Any] = {key: schema[key] for key in ("$defs", "definitions") if key in schema}  # for $ref
    validate_config({"type": "object", "properties": properties, **shared}, defaults)


def validate_config(
    schema: dict[str, Any], config: Any, limits: ConfigLimits = DEFAULT_LIMITS, subject: Subject = CONFIG
) -> dict[str, Any]:
    """The config (or a run's input: `subject`) with defaults filled in; raises BadUserInput
    listing the errors by JSON Pointer.

    The limits and the values a database would refuse are checked first, before the config is
    copied or validated, so a hostile config costs no more than a walk over 64 KB.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise BadUserInput(f"{subject.name} must be an object", [FieldError("", "must be an object")])
    filled = json.loads(checked_json(config, limits, subject))  # a deep copy, at C speed
    validator = _FillingValidator(_closed(schema or {}), format_checker=FORMATS)
    secrets = secret_keys(schema)
    # jsonschema finds errors lazily: taking no more than are reported bounds the work too
    found = list(itertools.islice(validator.iter_errors(filled), MAX_REPORTED_ERRORS + 1))
    errors = sorted(found, key=lambda e: list(map(str, e.absolute_path)))
    # dict.fromkeys: jsonschema reports `required` once per missing name, each listing them all
    field_errors = list(dict.fromkeys(fe for error in errors for fe in _field_errors(error, secrets, subject)))
    if field_errors:
        shown = field_errors[:MAX_REPORTED_ERRORS]
        summary = "; ".join(f"{fe.path or '/'}: {fe.message}" for fe in shown[:5])
        if len(found) > MAX_REPORTED_ERRORS:
            summary += "; and more"
        elif len(field_errors) > 5:
            summary += f"; and {len(field_errors) - 5} more"
        raise BadUserInput(f"{subject.invalid}: {summary}", shown)
    return filled


def output_problem(schema: dict[str, Any], output: Any) -> str | None:
    """Where and how a run's output breaks its plugin's output schema (`/chats/0/id: ...`), or None.
    Checked within the same limits as configs, so a runaway output costs a bounded walk."""
    problem = limit_problem(output)
    if problem is not None:
        return f"{problem.path or '/'}: {problem.message}"
    if json_problem(output, max_depth=MAX_DEPTH) is not None:
        return "/: is not JSON (NaN, Infinity or a value JSON cannot hold)"
    error = next(iter(Draft202012Validator(schema).iter_errors(output)), None)
    if error is None:
        return None
    return f"{_printable(_pointer(list(error.absolute_path))) or '/'}: {_printable(error.message)}"
