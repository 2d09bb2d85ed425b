"""Secret settings: config properties marked `"writeOnly": true` in a plugin's schema.

A secret is validated and stored like any setting, and the plugin reads it from `ctx.config`,
but it is never shown: the API shows a marker in its place, `{"$secret": "set"}` or
`{"$secret": "unset"}`. An update that omits a secret, or sends the marker back, keeps the stored
value; `null` clears it; any other value replaces it. So a client may send back the config it
read, with some settings changed, and the secrets stay as they were.

Only top-level properties may be secrets (`check_secrets` refuses `writeOnly` anywhere else, and
a default on a secret, since a schema is public), so a secret is always `config[name]`.

These functions never raise on a config that is not an object: validation reports that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MARKER_KEY = "$secret"
SET: dict[str, str] = {MARKER_KEY: "set"}
UNSET: dict[str, str] = {MARKER_KEY: "unset"}

# Keywords whose value is one subschema, a list of them, or a map of names to them (Draft 2020-12
# and the older names). Any other keyword's value is data (default, const, enum, examples, ...).
_ONE = (
    "additionalProperties",
    "items",
    "additionalItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def secret_keys(schema: Mapping[str, Any] | None) -> frozenset[str]:
    """The names of the top-level properties marked `"writeOnly": true`."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return frozenset()
    return frozenset(
        name for name, sub in properties.items() if isinstance(sub, Mapping) and sub.get("writeOnly") is True
    )


Path = tuple[str, ...]


def _subschemas(schema: Mapping[str, Any], path: Path) -> Iterator[tuple[Mapping[str, Any], Path]]:
    for key, value in schema.items():
        if key in _ONE and isinstance(value, Mapping):
            yield value, (*path, key)
        elif key in _LIST and isinstance(value, list):
            yield from ((sub, (*path, key, str(n))) for n, sub in enumerate(value) if isinstance(sub, Mapping))
        elif key in _MAP and isinstance(value, Mapping):
            yield from ((sub, (*path, key, name)) for name, sub in value.items() if isinstance(sub, Mapping))


def check_secrets(schema: Mapping[str, Any]) -> None:
    """Raises ValueError when the schema marks anything but a top-level property `writeOnly`, or
    gives a secret a default (the schema is public, so its default would be too)."""
    stack: list[tuple[Mapping[str, Any], Path]] = [(schema, ())]
    while stack:
        current, path = stack.pop()
        if current.get("writeOnly") not in (None, False):
            if len(path) != 2 or path[0] != "properties":
                where = "/" + "/".join(path)
                raise ValueError(f"writeOnly is supported on top-level properties only, not at {where}")
            if "default" in current:
                raise ValueError(f"Secret setting {path[1]!r} must not have a default")
        stack.extend(_subschemas(current, path))


def is_marker(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and value.get(MARKER_KEY) in ("set", "unset")


def merge_update(schema: Mapping[str, Any] | None, stored: Any, incoming: Any) -> Any:
    """The config to validate and store when `incoming` is sent over `stored` (None for a new
    install): non-secret settings are `incoming`'s, and for each secret, a value replaces it,
    `null` clears it, and leaving it out or sending a marker keeps the stored value."""
    secrets = secret_keys(schema)
    if not secrets:
        return incoming
    if incoming is None:
        incoming = {}
    if not isinstance(incoming, dict):
        return incoming  # validation refuses it
    kept = stored if isinstance(stored, dict) else {}
    merged = dict(incoming)
    for name in secrets:
        if name in incoming and not is_marker(incoming[name]):
            if incoming[name] is None:
                del merged[name]
            continue
        merged.pop(name, None)
        if kept.get(name) is not None:
            merged[name] = kept[name]
    return merged


def public_config(schema: Mapping[str, Any] | None, config: Any) -> Any:
    """The config as the API shows it: each secret replaced by `SET` or `UNSET`."""
    return shown_config(secret_keys(schema), config)


def shown_config(secrets: frozenset[str], config: Any) -> Any:
    """public_config with the schema's `secret_keys` already found."""
    if not secrets or not isinstance(config, dict):
        return config
    shown = {name: value for name, value in config.items() if name not in secrets}
    for name in sorted(secrets):
        shown[name] = dict(SET) if config.get(name) is not None else dict(UNSET)
    return shown


def redact(schema: Mapping[str, Any] | None, config: Any) -> Any:
    """The config as it may be logged or put in audit metadata: each secret that is present
    replaced by `SET`, and nothing added."""
    secrets = secret_keys(schema)
    if not secrets or not isinstance(config, dict):
        return config
    return {name: (dict(SET) if name in secrets else value) for name, value in config.items()}


def changed_secrets(schema: Mapping[str, Any] | None, before: Any, after: Any) -> list[str]:
    """The secrets an update set, replaced or cleared, by name (for audit metadata: names, never values)."""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    return sorted(name for name in secret_keys(schema) if old.get(name) != new.get(name))
