"""The catalogue: synced at start-up with the registered handlers (and installs' configs with
their plugins' versions), and read by the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.db import serialize
from app.plugins import states
from app.plugins.contract import PluginDefinition, PluginHandler
from app.plugins.gateway_needs import missing_gateways_of
from app.plugins.models import InstallStatus, Plugin, UserPlugin
from app.plugins.registry import PluginRegistry
from app.plugins.versions import bring_forward

log = logging.getLogger(__name__)

CATALOG_LOCK = "plugboard:catalog-sync"


@dataclass
class SyncReport:
    created: list[str]
    updated: list[str]
    deactivated: list[str]
    installs_migrated: int = 0
    installs_need_config: int = 0


def _row_values(definition: PluginDefinition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "description": definition.description,
        "version": definition.version,
        "required_gateways": [g.value for g in definition.required_gateways],
        "config_schema": definition.config_schema,
        "input_schema": definition.input_schema,
        "output_schema": definition.output_schema,
        "icon": definition.icon,
        "category": definition.category,
        "is_builtin": True,
        "is_active": True,
    }


class CatalogService:
    """The catalogue (built by app/platform.py, reached as `platform.catalog`): synced at start-up
    with the registered handlers, and read by the API."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry

    # --- syncing it ------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Upserts a row per registered handler by slug; marks rows of unregistered slugs inactive;
        then brings every install whose config was made for another version of its plugin forward
        (`migrate_config`, then validation against the new schema). An install whose config cannot
        be brought forward is NEEDS_CONFIG, with the reason, and its config is left as it was.

        One process at a time: the whole sync is one transaction that first takes `CATALOG_LOCK` (a
        row lock would lock nothing in an empty table), so processes starting together wait for the
        first, then find nothing to do. Every write is idempotent besides: new rows are inserted with
        ON CONFLICT DO NOTHING."""
        report = SyncReport([], [], [])
        async with in_transaction() as connection:
            await serialize(connection, CATALOG_LOCK)
            rows = {row.slug: row for row in await Plugin.all()}
            new = [handler.definition for handler in self.registry if handler.slug not in rows]
            if new:
                await Plugin.bulk_create(
                    [Plugin(slug=definition.slug, **_row_values(definition)) for definition in new],
                    ignore_conflicts=True,
                )
                rows.update({row.slug: row for row in await Plugin.filter(slug__in=[d.slug for d in new])})
                report.created.extend(definition.slug for definition in new)
            for handler in self.registry:
                definition = handler.definition
                values = _row_values(definition)
                row = rows[definition.slug]
                if all(getattr(row, name) == value for name, value in values.items()):
                    continue
                for name, value in values.items():
                    setattr(row, name, value)
                await row.save()
                report.updated.append(definition.slug)
            registered = {handler.slug for handler in self.registry}
            stale = [slug for slug, row in rows.items() if slug not in registered and row.is_active]
            if stale:
                await Plugin.filter(slug__in=stale).update(is_active=False)
                report.deactivated.extend(stale)
            for handler in self.registry:
                await self._bring_installs_forward(rows[handler.slug], handler, report)
        if (
            report.created
            or report.updated
            or report.deactivated
            or report.installs_migrated
            or report.installs_need_config
        ):
            log.info("catalog sync: %s", report)
        return report

    async def _bring_installs_forward(self, plugin: Plugin, handler: PluginHandler, report: SyncReport) -> None:
        behind = Q(config_version__isnull=True) | ~Q(config_version=plugin.version)
        for install in await UserPlugin.filter(behind, plugin_id=plugin.id):
            install.plugin = plugin
            config, problem = bring_forward(install, plugin, handler)
            if config is not None:
                await self._migrated(install, plugin, config)
                report.installs_migrated += 1
                continue
            assert problem is not None
            async with in_transaction():
                if install.status in (InstallStatus.DISABLED, InstallStatus.NEEDS_CONFIG):
                    await UserPlugin.filter(id=install.id).update(status_reason=problem)
                    if install.status == InstallStatus.DISABLED:
                        continue  # it shows NEEDS_CONFIG once its user enables it
                else:
                    await states.change(
                        install, states.Target(InstallStatus.NEEDS_CONFIG, problem), "plugin upgraded", plugin.slug
                    )
            report.installs_need_config += 1
            log.warning("install %s of %s needs its config changed: %s", install.id, plugin.slug, problem)

    async def _migrated(self, install: UserPlugin, plugin: Plugin, config: dict[str, object]) -> None:
        async with in_transaction():
            if install.status == InstallStatus.NEEDS_CONFIG:
                missing, refused = await missing_gateways_of(install.user_id, plugin.required_gateways)
                target = states.settled(install.is_enabled, None, missing, refused)
                await states.change(
                    install, target, "plugin upgraded", plugin.slug, config=config, config_version=plugin.version
                )
            else:
                await UserPlugin.filter(id=install.id).update(config=config, config_version=plugin.version)
                await states.routing_changed([install.user_id])

    # --- reading it ------------------------------------------------------------------------

    async def available(self, category: str | None = None) -> list[Plugin]:
        query = Plugin.filter(is_active=True)
        if category is not None:
            query = query.filter(category=category)
        return await query.order_by("name", "slug")

    async def by_slug(self, slug: str) -> Plugin | None:
        return await Plugin.get_or_none(slug=slug)

    async def installed_plugin_ids(self, ctx: ServiceContext | None, among: list[str]) -> set[str]:
        """Which of the plugins `among` the caller has installed (none when anonymous)."""
        if ctx is None or not among:
            return set()
        ids = await UserPlugin.filter(user_id=ctx.user_id, plugin_id__in=among).values_list("plugin_id", flat=True)
        return set(cast("list[str]", ids))  # tortoise types a flat values_list as tuples
