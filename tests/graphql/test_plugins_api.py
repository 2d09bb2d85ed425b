"""The plugin API over GraphQL: catalog, installs, config, toggling, audit, plans and isolation."""

from __future__ import annotations

import asyncio

import pytest

from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from app.plugins.models import UserPlugin
from tests.support.live import LiveApp, TestUser
from tests.support.plugins import BrokenInstallPlugin, RecordingPlugin
from tests.support.queries import counting_queries

CATALOG = "query($category: String) { plugins(category: $category) { id slug name category version requiredGateways configSchema isBuiltin isActive installed } }"
INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id config isEnabled executionCount lastError plugin { slug installed } } }"
UNINSTALL = "mutation($id: ID!) { uninstallPlugin(pluginId: $id) }"
UPDATE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"
TOGGLE = "mutation($id: ID!, $enabled: Boolean!) { togglePlugin(pluginId: $id, enabled: $enabled) { isEnabled } }"
MY_PLUGINS = "{ myPlugins { id config isEnabled executionCount lastExecutedAt lastError createdAt updatedAt plugin { slug installed } } }"
AUDIT = "{ auditLog { action targetType targetId metadata createdAt } }"


async def plugin_id(app: LiveApp, slug: str) -> str:
    data = await app.graphql("query($slug: String!) { plugin(slug: $slug) { id } }", {"slug": slug})
    return data["plugin"]["id"]


async def installs_of(app: LiveApp, user: TestUser) -> list[dict]:
    return (await app.graphql(MY_PLUGINS, user=user))["myPlugins"]


# --- catalog ---------------------------------------------------------------------------------


async def test_the_catalog_is_public_and_lists_the_built_in_plugins(app):
    plugins = (await app.graphql(CATALOG))["plugins"]
    by_slug = {p["slug"]: p for p in plugins}
    assert set(by_slug) == {"analytics", "forward", "welcome"}
    analytics = by_slug["analytics"]
    assert analytics["name"] == "Channel Analytics"
    assert analytics["requiredGateways"] == ["TELEGRAM_BOT"]
    assert analytics["configSchema"]["properties"]["retention"]["default"] == 30
    assert analytics["configSchema"]["properties"]["trackUsers"]["title"] == "Track users"
    assert analytics["isBuiltin"] and analytics["isActive"]
    assert not any(p["installed"] for p in plugins)


async def test_the_catalog_filters_by_category(app):
    plugins = (await app.graphql(CATALOG, {"category": "analytics"}))["plugins"]
    assert [p["slug"] for p in plugins] == ["analytics"]
    assert (await app.graphql(CATALOG, {"category": "nothing-here"}))["plugins"] == []


async def test_installed_is_true_for_the_caller_only(app, user):
    other = await app.create_user("other@example.com")
    await app.graphql(INSTALL, {"id": await plugin_id(app, "analytics")}, user=user)
    mine = {p["slug"]: p["installed"] for p in (await app.graphql(CATALOG, user=user))["plugins"]}
    theirs = {p["slug"]: p["installed"] for p in (await app.graphql(CATALOG, user=other))["plugins"]}
    assert mine == {"analytics": True, "forward": False, "welcome": False}
    assert theirs == {"analytics": False, "forward": False, "welcome": False}


async def test_an_unknown_slug_is_null(app):
    assert (await app.graphql('{ plugin(slug: "nope") { id } }'))["plugin"] is None


async def test_unregistered_plugins_leave_the_catalog_but_keep_their_rows(make_app, user):
    first = await make_app(handlers=[AnalyticsHandler(), WelcomeHandler()])
    welcome_id = await plugin_id(first, "welcome")
    second = await make_app(handlers=[AnalyticsHandler()])
    assert [p["slug"] for p in (await second.graphql(CATALOG))["plugins"]] == ["analytics"]
    inactive = (await second.graphql('{ plugin(slug: "welcome") { id isActive } }'))["plugin"]
    assert inactive == {"id": welcome_id, "isActive": False}


# --- installs --------------------------------------------------------------------------------


async def test_install_fills_in_config_defaults(app, user):
    install = (await app.graphql(INSTALL, {"id": await plugin_id(app, "analytics")}, user=user))["installPlugin"]
    assert install["config"] == {"trackUsers": True, "retention": 30, "timezone": "UTC"}
    assert install["isEnabled"] is True
    assert install["executionCount"] == 0
    assert install["lastError"] is None
    assert install["plugin"] == {"slug": "analytics", "installed": True}


async def test_install_keeps_given_values_and_fills_the_rest(app, user):
    install = await app.graphql(
        INSTALL, {"id": await plugin_id(app, "analytics"), "config": {"retention": 7}}, user=user
    )
    assert install["installPlugin"]["config"] == {"trackUsers": True, "retention": 7, "timezone": "UTC"}


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        (
            {"retention": "long"},
            [
                {
                    "path": "/retention",
                    "message": "'long' is not of type 'integer'",
                    "keyword": "type",
                    "params": {"type": "integer"},
                }
            ],
        ),
        (
            {"retention": 0},
            [
                {
                    "path": "/retention",
                    "message": "0 is less than the minimum of 1",
                    "keyword": "minimum",
                    "params": {"limit": 1},
                }
            ],
        ),
        (
            {"colour": "red"},
            [
                {
                    "path": "/colour",
                    "message": "is not a known setting",
                    "keyword": "additionalProperties",
                    "params": {"additionalProperty": "colour"},
                }
            ],
        ),
        (
            {"trackUsers": "yes", "extra": 1},
            [
                {
                    "path": "/extra",
                    "message": "is not a known setting",
                    "keyword": "additionalProperties",
                    "params": {"additionalProperty": "extra"},
                },
                {
                    "path": "/trackUsers",
                    "message": "'yes' is not of type 'boolean'",
                    "keyword": "type",
                    "params": {"type": "boolean"},
                },
            ],
        ),
    ],
    ids=["wrong-type", "below-minimum", "unknown-key", "several"],
)
async def test_an_invalid_config_is_refused_with_json_pointer_paths(app, user, config, errors):
    error = await app.graphql_error(INSTALL, {"id": await plugin_id(app, "analytics"), "config": config}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert sorted(error["extensions"]["errors"], key=lambda e: e["path"]) == errors
    assert await installs_of(app, user) == []


async def test_a_config_that_is_not_an_object_is_refused(app, user):
    error = await app.graphql_error(INSTALL, {"id": await plugin_id(app, "analytics"), "config": [1, 2]}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_config_nested_absurdly_deep_is_bad_user_input_not_a_crash(app, user):
    config: dict = {"retention": 1}
    for _ in range(500):
        config = {"x": config}
    error = await app.graphql_error(INSTALL, {"id": await plugin_id(app, "analytics"), "config": config}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await installs_of(app, user) == []


async def test_installing_twice_is_refused(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics}, user=user)
    error = await app.graphql_error(INSTALL, {"id": analytics}, user=user)
    assert error["extensions"]["code"] == "ALREADY_INSTALLED"
    assert len(await installs_of(app, user)) == 1


async def test_an_unknown_plugin_is_not_found(app, user):
    for query, variables in [
        (INSTALL, {"id": "nope"}),
        (UNINSTALL, {"id": "nope"}),
        (UPDATE, {"id": "nope", "config": {}}),
        (TOGGLE, {"id": "nope", "enabled": False}),
    ]:
        error = await app.graphql_error(query, variables, user=user)
        assert error["extensions"]["code"] == "NOT_FOUND", query


async def test_operations_on_a_plugin_not_installed_say_so(app, user):
    analytics = await plugin_id(app, "analytics")
    for query, variables in [
        (UNINSTALL, {"id": analytics}),
        (UPDATE, {"id": analytics, "config": {}}),
        (TOGGLE, {"id": analytics, "enabled": False}),
    ]:
        error = await app.graphql_error(query, variables, user=user)
        assert error["extensions"]["code"] == "NOT_INSTALLED", query


async def test_uninstall_removes_the_install(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics}, user=user)
    assert (await app.graphql(UNINSTALL, {"id": analytics}, user=user))["uninstallPlugin"] is True
    assert await installs_of(app, user) == []


async def test_update_config_validates_and_fills_defaults(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics, "config": {"retention": 7}}, user=user)
    updated = await app.graphql(UPDATE, {"id": analytics, "config": {"trackUsers": False}}, user=user)
    assert updated["updatePluginConfig"]["config"] == {"trackUsers": False, "retention": 30, "timezone": "UTC"}

    error = await app.graphql_error(UPDATE, {"id": analytics, "config": {"retention": -1}}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await installs_of(app, user))[0]["config"] == {"trackUsers": False, "retention": 30, "timezone": "UTC"}


async def test_toggle_disables_and_enables(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics}, user=user)
    assert (await app.graphql(TOGGLE, {"id": analytics, "enabled": False}, user=user))["togglePlugin"] == {
        "isEnabled": False
    }
    assert (await installs_of(app, user))[0]["isEnabled"] is False
    assert (await app.graphql(TOGGLE, {"id": analytics, "enabled": True}, user=user))["togglePlugin"] == {
        "isEnabled": True
    }


async def test_every_change_is_in_the_callers_audit_log(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics}, user=user)
    await app.graphql(UPDATE, {"id": analytics, "config": {"retention": 3}}, user=user)
    await app.graphql(TOGGLE, {"id": analytics, "enabled": False}, user=user)
    await app.graphql(UNINSTALL, {"id": analytics}, user=user)
    events = (await app.graphql(AUDIT, user=user))["auditLog"]
    assert [e["action"] for e in events] == [
        "plugin.uninstall",
        "plugin.toggle",
        "plugin.status",
        "plugin.config_update",
        "plugin.install",
    ]
    assert {(e["targetType"], e["targetId"]) for e in events} == {("plugin", analytics)}
    assert events[1]["metadata"] == {"slug": "analytics", "enabled": False}
    assert events[2]["metadata"] == {
        "slug": "analytics",
        "from": "WAITING_FOR_GATEWAY",
        "to": "DISABLED",
        "reason": "Turned off by its user",
        "why": "disabled by its user",
    }
    assert events[4]["metadata"] == {"slug": "analytics", "status": "WAITING_FOR_GATEWAY"}

    other = await app.create_user("other@example.com")
    assert (await app.graphql(AUDIT, user=other))["auditLog"] == []
    limited = await app.graphql("{ auditLog(limit: 2) { action } }", user=user)
    assert len(limited["auditLog"]) == 2


async def test_a_refused_mutation_writes_no_audit_event(app, user):
    analytics = await plugin_id(app, "analytics")
    await app.graphql_error(INSTALL, {"id": analytics, "config": {"retention": "x"}}, user=user)
    assert (await app.graphql(AUDIT, user=user))["auditLog"] == []


class StubbornPlugin(RecordingPlugin):
    async def on_disable(self, ctx) -> None:
        raise RuntimeError("will not stop")

    async def on_uninstall(self, ctx) -> None:
        raise RuntimeError("will not leave")


async def test_a_failing_install_hook_is_plugin_error_and_installs_nothing(make_app):
    live = await make_app(handlers=[BrokenInstallPlugin()])
    user = await live.create_user("hopeful@example.com")
    error = await live.graphql_error(INSTALL, {"id": await plugin_id(live, "broken-install")}, user=user)
    assert error["extensions"]["code"] == "PLUGIN_ERROR"
    assert await installs_of(live, user) == []
    assert (await live.graphql(AUDIT, user=user))["auditLog"] == []


async def test_a_failing_stop_hook_cannot_keep_a_plugin_running(make_app):
    live = await make_app(handlers=[StubbornPlugin("stubborn")])
    user = await live.create_user("hopeful@example.com")
    stubborn = await plugin_id(live, "stubborn")
    await live.graphql(INSTALL, {"id": stubborn}, user=user)

    disabled = await live.graphql(TOGGLE, {"id": stubborn, "enabled": False}, user=user)
    assert disabled["togglePlugin"] == {"isEnabled": False}
    [install] = await installs_of(live, user)
    assert install["lastError"] == "The plugin's on_disable hook failed: RuntimeError: will not stop"

    assert (await live.graphql(UNINSTALL, {"id": stubborn}, user=user))["uninstallPlugin"] is True
    assert await installs_of(live, user) == []
    events = (await live.graphql(AUDIT, user=user))["auditLog"]
    assert [e["action"] for e in events] == ["plugin.uninstall", "plugin.toggle", "plugin.status", "plugin.install"]
    assert events[0]["metadata"]["hookError"] == "The plugin's on_uninstall hook failed: RuntimeError: will not leave"
    assert events[1]["metadata"]["hookError"] == "The plugin's on_disable hook failed: RuntimeError: will not stop"


# --- who may do what -------------------------------------------------------------------------


async def test_private_fields_need_a_token(app):
    for query in (MY_PLUGINS, AUDIT, "{ myGateways { id } }", "{ me { email } }"):
        error = await app.graphql_error(query)
        assert error["extensions"]["code"] == "UNAUTHENTICATED", query


async def test_a_bad_token_is_unauthenticated_and_changes_nothing(app, user):
    impostor = TestUser(id="x", email="x@example.com", token="pb_not-a-real-token")
    error = await app.graphql_error(INSTALL, {"id": await plugin_id(app, "analytics")}, user=impostor)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "The API token is not valid"
    with app.db():
        assert await UserPlugin.all().count() == 0


async def test_users_cannot_see_or_touch_each_others_installs(app, user):
    other = await app.create_user("other@example.com", "pro")
    analytics = await plugin_id(app, "analytics")
    await app.graphql(INSTALL, {"id": analytics}, user=user)
    assert await installs_of(app, other) == []
    for query, variables in [
        (UNINSTALL, {"id": analytics}),
        (UPDATE, {"id": analytics, "config": {"retention": 1}}),
        (TOGGLE, {"id": analytics, "enabled": False}),
    ]:
        assert (await app.graphql_error(query, variables, user=other))["extensions"]["code"] == "NOT_INSTALLED"
    assert (await installs_of(app, user))[0]["config"] == {"trackUsers": True, "retention": 30, "timezone": "UTC"}


async def test_me_shows_the_plan_and_its_limit(app, user, pro_user):
    assert (await app.graphql("{ me { email plan pluginLimit } }", user=user))["me"] == {
        "email": "ada@example.com",
        "plan": "FREE",
        "pluginLimit": 1,
    }
    assert (await app.graphql("{ me { plan pluginLimit } }", user=pro_user))["me"] == {"plan": "PRO", "pluginLimit": 10}


# --- plans ----------------------------------------------------------------------------------


async def test_install_beyond_the_plan_limit_is_refused_and_changes_nothing(app, user):
    await app.graphql(INSTALL, {"id": await plugin_id(app, "analytics")}, user=user)
    error = await app.graphql_error(INSTALL, {"id": await plugin_id(app, "welcome")}, user=user)
    assert error["extensions"]["code"] == "PLAN_LIMIT_REACHED"
    assert [i["plugin"]["slug"] for i in await installs_of(app, user)] == ["analytics"]


async def test_the_plan_limit_holds_under_concurrent_installs(make_app):
    plugins = [RecordingPlugin(f"plugin-{n}") for n in range(10)]
    live = await make_app(handlers=plugins, plan_limits={"free": 1, "pro": 3, "business": None})
    user = await live.create_user("rush@example.com", "pro")
    ids = [p["id"] for p in (await live.graphql(CATALOG))["plugins"]]
    assert len(ids) == 10

    results = await asyncio.gather(*(live.graphql_response(INSTALL, {"id": i}, user=user) for i in ids))

    installed = [r for r in results if not r.get("errors")]
    refused = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(installed) == 3
    assert refused == ["PLAN_LIMIT_REACHED"] * 7
    assert len(await installs_of(live, user)) == 3


async def test_a_business_plan_has_no_limit(make_app):
    plugins = [RecordingPlugin(f"plugin-{n}") for n in range(12)]
    live = await make_app(handlers=plugins)
    user = await live.create_user("big@example.com", "business")
    for plugin in (await live.graphql(CATALOG))["plugins"]:
        await live.graphql(INSTALL, {"id": plugin["id"]}, user=user)
    assert len(await installs_of(live, user)) == 12


# --- cost ----------------------------------------------------------------------------------


async def test_listing_installs_costs_the_same_queries_whatever_their_number(make_app):
    plugins = [RecordingPlugin(f"plugin-{n}") for n in range(6)]
    # No background queries in the count, and every request reads its token (none is cached).
    live = await make_app(handlers=plugins, inbox_concurrency=0, token_cache_seconds=0)
    one, many = await live.create_user("one@example.com", "pro"), await live.create_user("many@example.com", "pro")
    ids = [p["id"] for p in (await live.graphql(CATALOG))["plugins"]]
    await live.graphql(INSTALL, {"id": ids[0]}, user=one)
    for plugin in ids:
        await live.graphql(INSTALL, {"id": plugin}, user=many)

    costs = []
    for user in (one, many):
        with counting_queries() as statements:
            installs = await installs_of(live, user)
            catalog = await live.graphql(CATALOG, user=user)
        costs.append(len(statements))
        assert all(i["plugin"]["installed"] for i in installs)
        assert len(catalog["plugins"]) == 6
    assert costs[0] == costs[1]
    assert costs[0] <= 6


async def test_my_plugin_is_one_of_the_callers_installs_by_plugin_id(app, user):
    analytics = await plugin_id(app, "analytics")
    one = "query($id: ID!) { myPlugin(pluginId: $id) { id status plugin { slug } } }"
    assert (await app.graphql(one, {"id": analytics}, user=user))["myPlugin"] is None
    installed = (await app.graphql(INSTALL, {"id": analytics}, user=user))["installPlugin"]
    mine = (await app.graphql(one, {"id": analytics}, user=user))["myPlugin"]
    assert mine == {"id": installed["id"], "status": "WAITING_FOR_GATEWAY", "plugin": {"slug": "analytics"}}
    other = await app.create_user("other@example.com")
    assert (await app.graphql(one, {"id": analytics}, user=other))["myPlugin"] is None
    assert (await app.graphql(one, {"id": "not-an-id"}, user=user))["myPlugin"] is None
    assert (await app.graphql_error(one, {"id": analytics}))["extensions"]["code"] == "UNAUTHENTICATED"
