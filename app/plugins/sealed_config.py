"""An install's secret settings sealed at rest (app/secrets_at_rest.py).

`user_plugins.config` holds each `writeOnly` setting (app/plugins/secrets.py) as a sealed string,
bound to the install and the setting's name; everything else is stored as it is. A value is
sealed as JSON, so a secret of any type comes back the same. A top-level string that merely looks
sealed (`enc:v1:…`) is sealed too, so that every sealed-looking value in a stored config is one.

The plain config exists only in memory: in `ctx.config` (executor.context), and while a config
is merged, validated or migrated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app import secrets_at_rest as at_rest
from app.plugins.secrets import secret_keys


def place(install_id: str, name: str) -> at_rest.Place:
    return at_rest.Place("user_plugins", install_id, f"config.{name}")


def seal_config(install_id: str, schema: Mapping[str, Any] | None, config: Any) -> Any:
    """The config to store: its secrets (and anything that looks sealed) sealed."""
    if not isinstance(config, dict):
        return config
    secrets = secret_keys(schema)
    return {
        name: (
            at_rest.seal(json.dumps(value), place(install_id, name))
            if value is not None and (name in secrets or at_rest.is_sealed(value))
            else value
        )
        for name, value in config.items()
    }


def open_config(install_id: str, config: Any, *, drop_unreadable: bool = False) -> Any:
    """The config with its sealed values opened. Raises SecretUnreadable, or with
    `drop_unreadable` leaves such a setting out (validation then asks for it again)."""
    if not isinstance(config, dict) or not any(at_rest.is_sealed(v) for v in config.values()):
        return config
    opened: dict[str, Any] = {}
    for name, value in config.items():
        if not at_rest.is_sealed(value):
            opened[name] = value
            continue
        try:
            opened[name] = json.loads(at_rest.open_sealed(value, place(install_id, name)))
        except at_rest.SecretUnreadable:
            if not drop_unreadable:
                raise
    return opened
