"""What a `myPlugins` read costs the database: the same statements for 1 install as for 10, and the
installs (with their plugins) in one of them."""

from __future__ import annotations

from tests.support.live import LiveApp, TestUser
from tests.support.plugins import RecordingPlugin
from tests.support.queries import counting_queries

CATALOG = "{ plugins { id slug } }"
INSTALL = "mutation($id: ID!) { installPlugin(pluginId: $id) { id } }"
# What the My plugins page asks for, and whether each plugin is installed.
MY_PLUGINS = (
    "query Mine { myPlugins { id isEnabled config executionCount lastExecutedAt lastError "
    "plugin { id slug name description category version icon requiredGateways configSchema installed } } }"
)


async def read(live: LiveApp, user: TestUser) -> tuple[list[dict], list[str]]:
    with counting_queries() as statements:
        installs = (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]
    return installs, list(statements)


async def test_my_plugins_costs_the_same_statements_for_1_and_10_installs(make_app):
    # Every request reads its token (none is cached): what is counted does not depend on the cache.
    live = await make_app(
        handlers=[RecordingPlugin(f"plugin-{n}") for n in range(10)], inbox_concurrency=0, token_cache_seconds=0
    )
    one = await live.create_user("one@example.com", "business")
    ten = await live.create_user("ten@example.com", "business")  # no install limit
    ids = [p["id"] for p in (await live.graphql(CATALOG))["plugins"] if p["slug"].startswith("plugin-")]
    assert len(ids) == 10
    await live.graphql(INSTALL, {"id": ids[0]}, user=one)
    for plugin in ids:
        await live.graphql(INSTALL, {"id": plugin}, user=ten)
    for user in (one, ten):  # a token's first use records it; reads after that are what is counted
        await live.graphql("{ __typename }", user=user)

    installs_one, cost_one = await read(live, one)
    installs_ten, cost_ten = await read(live, ten)

    assert [i["plugin"]["slug"] for i in installs_one] == ["plugin-0"]
    assert sorted(i["plugin"]["slug"] for i in installs_ten) == [f"plugin-{n}" for n in range(10)]
    assert all(i["plugin"]["installed"] for i in installs_one + installs_ten)
    assert len(cost_one) == len(cost_ten), (cost_one, cost_ten)
    installs_read = [s for s in cost_ten if "user_plugins" in s and "plugins" in s.replace("user_plugins", "")]
    assert len(installs_read) == 1, cost_ten  # installs and their plugins in one statement
