"""The start-up catalog sync: rows follow the registered handlers, installs follow plugin upgrades."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from typing import Any

from app.audit.models import AuditLog
from app.db import Database
from app.plugins.catalog import CatalogService, SyncReport
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.models import InstallStatus, Plugin
from app.plugins.registry import PluginRegistry
from tests.support.runtime import install, reload


class AnalyticsV2(AnalyticsHandler):
    schema = copy.deepcopy(AnalyticsHandler.definition.config_schema)
    schema["properties"]["retention"]["maximum"] = 90
    schema["properties"]["topChats"] = {"type": "integer", "title": "Top chats", "default": 5}
    definition = replace(AnalyticsHandler.definition, version="2.0.0", config_schema=schema)


class AnalyticsV3(AnalyticsHandler):
    """Renames `retention` to `keepDays` (weeks rounded up to days), and drops `trackUsers`."""

    schema = {
        "type": "object",
        "properties": {
            "keepDays": {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
            "countUsers": {"type": "boolean", "default": True},
        },
        "additionalProperties": False,
    }
    definition = replace(AnalyticsHandler.definition, version="3.0.0", config_schema=schema)

    def migrate_config(self, from_version: str | None, config: dict[str, Any]) -> dict[str, Any]:
        if from_version is None or from_version.split(".")[0] not in ("1", "2"):
            raise ValueError(f"no migration from version {from_version}")
        if config.get("retention") == 13:
            raise ValueError("a retention of 13 days is unlucky")
        return {"keepDays": config["retention"], "countUsers": config.get("trackUsers", True)}


async def status_of(app, installed) -> tuple[str, str | None, str | None]:
    row = await reload(app, installed)
    return row.status.value, row.status_reason, row.config_version


async def test_an_upgrade_fills_new_defaults_and_holds_configs_that_no_longer_fit(make_app):
    v1 = await make_app(handlers=[AnalyticsHandler()])
    fits = await install(v1, await v1.create_user("fits@example.com"), "analytics", {"retention": 60})
    long_user = await v1.create_user("long@example.com")
    too_long = await install(v1, long_user, "analytics", {"retention": 365})
    assert (await reload(v1, fits)).config_version == AnalyticsHandler.definition.version
    await v1.stop()

    v2 = await make_app(handlers=[AnalyticsV2()])
    with v2.db():
        row = await Plugin.get(slug="analytics")
    assert row.version == "2.0.0"
    assert row.config_schema["properties"]["topChats"]["default"] == 5

    upgraded = await reload(v2, fits)
    assert upgraded.config == {"trackUsers": True, "retention": 60, "timezone": "UTC", "topChats": 5}
    assert upgraded.config_version == "2.0.0"
    assert upgraded.status == InstallStatus.WAITING_FOR_GATEWAY  # no bot yet: as before the upgrade

    held = await reload(v2, too_long)
    assert held.status == InstallStatus.NEEDS_CONFIG
    assert held.is_enabled is True  # its user never turned it off
    assert held.config == {"trackUsers": True, "retention": 365, "timezone": "UTC"}  # kept as it was, never dropped
    assert held.config_version == AnalyticsHandler.definition.version
    assert held.status_reason == (
        "Plugin upgraded to 2.0.0; the config needs changes: /retention 365 is greater than the maximum of 90"
    )
    with v2.db():
        [event] = await AuditLog.filter(actor_id=held.user_id, action="plugin.status").values_list(
            "metadata", flat=True
        )
    assert (event["from"], event["to"]) == ("WAITING_FOR_GATEWAY", "NEEDS_CONFIG")

    # Its user fixes the config: it runs again (here: waits for a bot), checked against 2.0.0.
    fixed = await v2.graphql(
        "mutation($id: ID!) { updatePluginConfig(pluginId: $id, config: {retention: 90}) "
        "{ status statusReason configVersion config } }",
        {"id": row.id},
        user=long_user,
    )
    assert fixed["updatePluginConfig"] == {
        "status": "WAITING_FOR_GATEWAY",
        "statusReason": "Waiting for a Telegram bot: connect one and this plugin starts",
        "configVersion": "2.0.0",
        "config": {"trackUsers": True, "retention": 90, "timezone": "UTC", "topChats": 5},
    }


async def test_configs_are_migrated_across_two_versions_or_held_unchanged(make_app):
    v1 = await make_app(handlers=[AnalyticsHandler()])
    plain = await install(v1, await v1.create_user("plain@example.com"), "analytics", {"retention": 40})
    unlucky = await install(v1, await v1.create_user("unlucky@example.com"), "analytics", {"retention": 13})
    off = await install(v1, await v1.create_user("off@example.com"), "analytics", {"trackUsers": False})
    await v1.stop()

    v3 = await make_app(handlers=[AnalyticsV3()])  # straight from 1.x to 3.0.0
    migrated = await reload(v3, plain)
    assert migrated.config == {"keepDays": 40, "countUsers": True}
    assert migrated.config_version == "3.0.0"
    assert (await reload(v3, off)).config == {"keepDays": 30, "countUsers": False}

    held = await reload(v3, unlucky)
    assert held.status == InstallStatus.NEEDS_CONFIG
    assert held.config == {"trackUsers": True, "retention": 13, "timezone": "UTC"}  # never silently changed
    assert held.status_reason == (
        "Plugin upgraded to 3.0.0; the config could not be migrated: a retention of 13 days is unlucky"
    )
    await v3.stop()

    # A restart changes nothing more: configs already at 3.0.0 are left alone.
    again = await make_app(handlers=[AnalyticsV3()])
    assert (await reload(again, plain)).updated_at == migrated.updated_at
    assert (await reload(again, unlucky)).status == InstallStatus.NEEDS_CONFIG


async def test_an_unchanged_catalog_is_left_alone(make_app):
    first = await make_app(handlers=[AnalyticsHandler()])
    with first.db():
        before = await Plugin.get(slug="analytics")
    second = await make_app(handlers=[AnalyticsHandler()])
    with second.db():
        after = await Plugin.get(slug="analytics")
    assert after.updated_at == before.updated_at
    assert after.id == before.id


async def test_a_plugin_that_comes_back_is_active_again(make_app):
    await make_app(handlers=[AnalyticsHandler()])
    gone = await make_app(handlers=[])
    with gone.db():
        assert (await Plugin.get(slug="analytics")).is_active is False
    back = await make_app(handlers=[AnalyticsHandler()])
    with back.db():
        assert (await Plugin.get(slug="analytics")).is_active is True


async def test_syncs_running_at_once_take_turns_and_the_first_does_all_the_work(database_url):
    """Processes starting together each sync the catalog: one adds the rows, the others wait for
    it (an empty table has no row to lock) and find nothing to do."""
    registry = PluginRegistry([handler() for handler in BUILTIN_HANDLERS])
    databases = [Database(database_url) for _ in range(4)]  # one pool each, as four processes have
    for db in databases:
        await db.open()
    try:

        async def sync(db: Database) -> SyncReport:
            with db.bound():
                return await CatalogService(registry).sync()

        reports = await asyncio.gather(*(sync(db) for db in databases))
        with databases[0].bound():
            slugs = await Plugin.all().order_by("slug").values_list("slug", flat=True)
    finally:
        for db in databases:
            await db.close()
    builtin = sorted(handler.definition.slug for handler in BUILTIN_HANDLERS)
    assert list(slugs) == builtin
    assert sorted(sorted(report.created) for report in reports) == [[], [], [], builtin]
    assert all(report.updated == report.deactivated == [] for report in reports)
