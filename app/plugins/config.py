"""Validating an install's config against its plugin's JSON Schema (Draft 2020-12)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from app.errors import BadUserInput, FieldError


def _fill_defaults(validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if isinstance(subschema, dict) and "default" in subschema and name not in instance:
                instance[name] = copy.deepcopy(subschema["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_FillingValidator = validators.extend(Draft202012Validator, {"properties": _fill_defaults})


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


def _pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _field_errors(error: ValidationError) -> list[FieldError]:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [FieldError(_pointer([*path, name]), "is required") for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [
            FieldError(_pointer([*path, name]), "is not a known setting")
            for name in sorted(error.instance)
            if name not in known
        ]
    return [FieldError(_pointer(path), error.message)]


MAX_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests, counting no further than `limit` + 1 (so it cannot recurse away)."""
    if limit < 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def check_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)


def validate_config(schema: dict[str, Any], config: Any) -> dict[str, Any]:
    """The config with defaults filled in; raises BadUserInput listing every error by JSON Pointer."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise BadUserInput("Config must be an object", [FieldError("", "must be an object")])
    if _depth(config, MAX_DEPTH) > MAX_DEPTH:  # deepcopy and the validator recurse: refuse before them
        raise BadUserInput("Config nests too deeply", [FieldError("", f"nests deeper than {MAX_DEPTH} levels")])
    filled = copy.deepcopy(config)
    validator = _FillingValidator(_closed(schema or {}))
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    field_errors = [fe for error in errors for fe in _field_errors(error)]
    if field_errors:
        summary = "; ".join(f"{fe.path or '/'}: {fe.message}" for fe in field_errors)
        raise BadUserInput(f"Invalid plugin config: {summary}", field_errors)
    return filled
