"""Start-up sync of the catalog with the registered handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from app.errors import BadUserInput
from app.plugins.config import validate_config
from app.plugins.contract import PluginDefinition
from app.plugins.models import Plugin, UserPlugin
from app.plugins.registry import PluginRegistry
from app.plugins.service import UPGRADE_ERROR_PREFIX, describe_config_errors

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    created: list[str]
    updated: list[str]
    deactivated: list[str]
    installs_disabled: int = 0


def _row_values(definition: PluginDefinition) -> dict[str, object]:
    return {
        "name": definition.name,
        "description": definition.description,
        "version": definition.version,
        "required_gateways": [g.value for g in definition.required_gateways],
        "config_schema": definition.config_schema,
        "icon": definition.icon,
        "category": definition.category,
        "is_builtin": True,
        "is_active": True,
    }


async def sync_catalog(registry: PluginRegistry) -> SyncReport:
    """Upserts a row per registered handler by slug; marks rows of unregistered slugs inactive.

    When a plugin's version or config schema changed, each install's config is brought forward:
    new defaults are filled in, and an install whose config no longer validates is disabled with
    `lastError` naming the field and the reason. Configs are never dropped.
    """
    report = SyncReport([], [], [])
    async with in_transaction():
        rows = {row.slug: row for row in await Plugin.all().select_for_update()}
        for handler in registry:
            definition = handler.definition
            values = _row_values(definition)
            row = rows.get(definition.slug)
            if row is None:
                await Plugin.create(slug=definition.slug, **values)
                report.created.append(definition.slug)
                continue
            if all(getattr(row, name) == value for name, value in values.items()):
                continue
            schema_changed = row.version != definition.version or row.config_schema != definition.config_schema
            for name, value in values.items():
                setattr(row, name, value)
            await row.save()
            report.updated.append(definition.slug)
            if schema_changed:
                report.installs_disabled += await _bring_installs_forward(row)
        registered = {handler.slug for handler in registry}
        stale = [slug for slug, row in rows.items() if slug not in registered and row.is_active]
        if stale:
            await Plugin.filter(slug__in=stale).update(is_active=False)
            report.deactivated.extend(stale)
    if report.created or report.updated or report.deactivated:
        log.info("catalog sync: %s", report)
    return report


async def _bring_installs_forward(plugin: Plugin) -> int:
    disabled = 0
    for install in await UserPlugin.filter(plugin_id=plugin.id):
        try:
            config = validate_config(plugin.config_schema, install.config)
        except BadUserInput as exc:
            install.is_enabled = False
            install.last_error = (
                f"{UPGRADE_ERROR_PREFIX} to {plugin.version}: {describe_config_errors(exc)}"
            )
            await install.save(update_fields=["is_enabled", "last_error", "updated_at"])
            disabled += 1
            continue
        if config != install.config:
            install.config = config
            await install.save(update_fields=["config", "updated_at"])
    return disabled
