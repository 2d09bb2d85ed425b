"""The start-up catalog sync: rows follow the registered handlers, installs follow plugin upgrades."""

from __future__ import annotations

import copy
from dataclasses import replace

from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.models import Plugin
from tests.support.runtime import install, reload


class AnalyticsV2(AnalyticsHandler):
    schema = copy.deepcopy(AnalyticsHandler.definition.config_schema)
    schema["properties"]["retention"]["maximum"] = 90
    schema["properties"]["topChats"] = {"type": "integer", "title": "Top chats", "default": 5}
    definition = replace(AnalyticsHandler.definition, version="2.0.0", config_schema=schema)


async def test_an_upgrade_fills_new_defaults_and_disables_configs_that_no_longer_fit(make_app):
    v1 = await make_app(handlers=[AnalyticsHandler()])
    fits = await install(v1, await v1.create_user("fits@example.com"), "analytics", {"retention": 60})
    too_long = await install(v1, await v1.create_user("long@example.com"), "analytics", {"retention": 365})
    await v1.stop()

    v2 = await make_app(handlers=[AnalyticsV2()])
    with v2.db():
        row = await Plugin.get(slug="analytics")
    assert row.version == "2.0.0"
    assert row.config_schema["properties"]["topChats"]["default"] == 5

    upgraded = await reload(v2, fits)
    assert upgraded.config == {"trackUsers": True, "retention": 60, "topChats": 5}
    assert upgraded.is_enabled and upgraded.last_error is None

    disabled = await reload(v2, too_long)
    assert disabled.is_enabled is False
    assert disabled.config == {"trackUsers": True, "retention": 365}  # kept as it was, never dropped
    assert disabled.last_error == (
        "Disabled by plugin upgrade to 2.0.0: /retention 365 is greater than the maximum of 90"
    )


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
