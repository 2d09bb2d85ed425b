"""Bringing an install's config to its plugin's current version: `migrate_config`, then
validation against the new schema (which fills new defaults)."""

from __future__ import annotations

import copy
from typing import Any

from app.errors import BadUserInput
from app.plugins.config import validate_config
from app.plugins.contract import PluginHandler
from app.plugins.models import Plugin, UserPlugin
from app.plugins.sealed_config import open_config, seal_config


def describe_config_errors(exc: BadUserInput) -> str:
    return "; ".join(f"{e.path or '/'} {e.message}" for e in exc.errors)


def bring_forward(
    install: UserPlugin, plugin: Plugin, handler: PluginHandler | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The install's config at `plugin.version` (its secrets sealed, to store), or None and the
    reason it cannot be (a secret that does not decrypt is left out: validation asks for it)."""
    config = open_config(install.id, install.config, drop_unreadable=True)
    if install.config_version != plugin.version and handler is not None:
        try:
            config = handler.migrate_config(install.config_version, copy.deepcopy(config))
        except Exception as exc:  # a plugin's migration that fails: its reason, never a crash
            return None, f"Plugin upgraded to {plugin.version}; the config could not be migrated: {exc}"[:2000]
    try:
        return seal_config(install.id, plugin.config_schema, validate_config(plugin.config_schema, config)), None
    except BadUserInput as exc:
        return None, f"Plugin upgraded to {plugin.version}; the config needs changes: {describe_config_errors(exc)}"[
            :2000
        ]
