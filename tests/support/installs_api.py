"""Install states, run history and retries as a client sees them: over GraphQL."""

from __future__ import annotations

from typing import Any

from app.accounts.models import User
from tests.support.live import LiveApp, TestUser

INSTALL_FIELDS = (
    "id isEnabled status statusReason configVersion consecutiveFailures executionCount lastError plugin { id slug }"
)
RUN_FIELDS = (
    "id outcome trigger eventType eventLabel chatId schedule firedAt error durationMs createdAt retryOf canRetry "
    "output apiCalls tokensUsed workflowRunId stepIndex"
)
MY_INSTALLS = f"{{ myPlugins {{ {INSTALL_FIELDS} }} }}"
RUNS = (
    "query($first: Int!, $after: String) { myPlugins { plugin { slug } runs(first: $first, after: $after) { "
    f"edges {{ cursor node {{ {RUN_FIELDS} }} }} nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
)
INSTALL = (
    f"mutation($id: ID!, $config: JSON) {{ installPlugin(pluginId: $id, config: $config) {{ {INSTALL_FIELDS} }} }}"
)
TOGGLE = f"mutation($id: ID!, $enabled: Boolean!) {{ togglePlugin(pluginId: $id, enabled: $enabled) {{ {INSTALL_FIELDS} }} }}"
UPDATE_CONFIG = f"mutation($id: ID!, $config: JSON!) {{ updatePluginConfig(pluginId: $id, config: $config) {{ {INSTALL_FIELDS} }} }}"
RETRY = f"mutation($id: ID!) {{ retryRun(runId: $id) {{ {RUN_FIELDS} }} }}"
RUN_PLUGIN = f"mutation($id: ID!, $input: JSON) {{ runPlugin(pluginId: $id, input: $input) {{ {RUN_FIELDS} }} }}"
RUN_CHAIN = (
    "mutation($steps: [ChainStepInput!]!, $variables: JSON) { runChain(steps: $steps, variables: $variables) { "
    f"id status output steps {{ {RUN_FIELDS} }} }} }}"
)
CONNECT = "mutation($token: String!) { connectTelegramBot(token: $token) { id isActive } }"
DISCONNECT = "mutation($id: ID!) { disconnectGateway(gatewayId: $id) }"
AUDIT = "query($action: String) { auditLog(limit: 500, action: $action) { action targetId metadata } }"


async def plugin_id(app: LiveApp, slug: str) -> str:
    data = await app.graphql("query($slug: String!) { plugin(slug: $slug) { id } }", {"slug": slug})
    assert data["plugin"] is not None, slug
    return data["plugin"]["id"]


async def install_via_api(
    app: LiveApp, user: TestUser, slug: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    variables = {"id": await plugin_id(app, slug), "config": config}
    return (await app.graphql(INSTALL, variables, user=user))["installPlugin"]


async def my_install(app: LiveApp, user: TestUser, slug: str) -> dict[str, Any]:
    installs = (await app.graphql(MY_INSTALLS, user=user))["myPlugins"]
    [found] = [i for i in installs if i["plugin"]["slug"] == slug]
    return found


async def toggle(app: LiveApp, user: TestUser, slug: str, enabled: bool) -> dict[str, Any]:
    variables = {"id": await plugin_id(app, slug), "enabled": enabled}
    return (await app.graphql(TOGGLE, variables, user=user))["togglePlugin"]


async def update_config(app: LiveApp, user: TestUser, slug: str, config: dict[str, Any]) -> dict[str, Any]:
    variables = {"id": await plugin_id(app, slug), "config": config}
    return (await app.graphql(UPDATE_CONFIG, variables, user=user))["updatePluginConfig"]


async def runs_page(
    app: LiveApp, user: TestUser, slug: str, first: int = 20, after: str | None = None
) -> dict[str, Any]:
    """One page of the caller's runs of `slug`: {edges, nodes, pageInfo}."""
    installs = (await app.graphql(RUNS, {"first": first, "after": after}, user=user))["myPlugins"]
    [found] = [i for i in installs if i["plugin"]["slug"] == slug]
    return found["runs"]


async def runs_of(app: LiveApp, user: TestUser, slug: str, first: int = 100) -> list[dict[str, Any]]:
    """Every run of the caller's install of `slug`, newest first, page after page."""
    runs: list[dict[str, Any]] = []
    after = None
    while True:
        page = await runs_page(app, user, slug, first, after)
        runs.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return runs
        after = page["pageInfo"]["endCursor"]


async def retry_run(app: LiveApp, user: TestUser, run_id: str) -> dict[str, Any]:
    return (await app.graphql(RETRY, {"id": run_id}, user=user))["retryRun"]


async def run_plugin(app: LiveApp, user: TestUser, slug: str, input: Any = None) -> dict[str, Any]:
    """runPlugin on the caller's install of `slug`: the finished run (the call must not be refused)."""
    variables = {"id": await plugin_id(app, slug), "input": input}
    return (await app.graphql(RUN_PLUGIN, variables, user=user))["runPlugin"]


async def run_plugin_error(app: LiveApp, user: TestUser, slug: str, input: Any = None) -> dict[str, Any]:
    """The one error of a runPlugin that must be refused."""
    variables = {"id": await plugin_id(app, slug), "input": input}
    return await app.graphql_error(RUN_PLUGIN, variables, user=user)


# A chain's step: a slug, or (slug, input); a step without input takes the output of the one before.
Step = str | tuple[str, Any]


async def chain_steps(app: LiveApp, steps: list[Step]) -> list[dict[str, Any]]:
    """runChain's `steps` argument for steps named by slug."""
    ids: dict[str, str] = {}
    resolved = []
    for step in steps:
        slug, input = (step, None) if isinstance(step, str) else step
        if slug not in ids:
            ids[slug] = await plugin_id(app, slug)
        resolved.append({"pluginId": ids[slug]} if input is None else {"pluginId": ids[slug], "input": input})
    return resolved


async def run_chain(app: LiveApp, user: TestUser, steps: list[Step], variables: Any = None) -> dict[str, Any]:
    """runChain of the caller's installs: the ChainRun (the call must not be refused)."""
    arguments = {"steps": await chain_steps(app, steps), "variables": variables}
    return (await app.graphql(RUN_CHAIN, arguments, user=user))["runChain"]


async def run_chain_error(app: LiveApp, user: TestUser, steps: list[Step], variables: Any = None) -> dict[str, Any]:
    """The one error of a runChain that must be refused."""
    arguments = {"steps": await chain_steps(app, steps), "variables": variables}
    return await app.graphql_error(RUN_CHAIN, arguments, user=user)


async def audit_events(app: LiveApp, user: TestUser, action: str) -> list[dict[str, Any]]:
    """The metadata of the caller's audit events of `action`, oldest first."""
    events = (await app.graphql(AUDIT, {"action": action}, user=user))["auditLog"]
    return [event["metadata"] for event in reversed(events)]


async def status_changes(app: LiveApp, user: TestUser, slug: str) -> list[tuple[str, str, str]]:
    """(from, to, why) of each `plugin.status` event of the caller's install of `slug`, oldest first."""
    return [(e["from"], e["to"], e["why"]) for e in await audit_events(app, user, "plugin.status") if e["slug"] == slug]


async def routing_version(app: LiveApp, user: TestUser) -> int:
    with app.db():
        return (await User.get(id=user.id)).routing_version
