"""Installs under races: one uninstall wins, and no write lands on an install deleted meanwhile.
And the cheap refusals of an install come before its config is validated."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from tortoise.transactions import in_transaction

from app.audit.models import AuditLog
from app.plugins.models import Plugin, UserPlugin
from tests.support.live import LiveApp, TestUser

INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id } }"
UNINSTALL = "mutation($id: ID!) { uninstallPlugin(pluginId: $id) }"
CONFIGURE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"
TOGGLE = "mutation($id: ID!, $on: Boolean!) { togglePlugin(pluginId: $id, enabled: $on) { isEnabled } }"
PARALLEL = 10


async def plugin_id(app: LiveApp, slug: str) -> str:
    with app.db():
        return (await Plugin.get(slug=slug)).id


async def audit_actions(app: LiveApp, user: TestUser) -> list[str]:
    with app.db():
        return cast(
            "list[str]", await AuditLog.filter(actor_id=user.id).order_by("created_at").values_list("action", flat=True)
        )


def codes(results: list[dict[str, Any]]) -> list[str]:
    return [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]


@contextlib.asynccontextmanager
async def uninstalled_by_another_process(other: LiveApp, install_id: str, hold_seconds: float) -> AsyncIterator[None]:
    """Another process deletes the install in a transaction it keeps open for a while: a call
    that read the install before still finds its row, then meets the delete when it writes."""
    with other.db():
        async with in_transaction():
            assert await UserPlugin.filter(id=install_id).delete() == 1
            yield
            await asyncio.sleep(hold_seconds)


async def test_parallel_uninstalls_of_one_install_succeed_once(make_app, pro_user):
    first = await make_app()
    second = await make_app()  # a second process on the same database
    welcome = await plugin_id(first, "welcome")
    await first.graphql(INSTALL, {"id": welcome}, user=pro_user)

    results = await asyncio.gather(
        *(
            (first if n % 2 else second).graphql_response(UNINSTALL, {"id": welcome}, user=pro_user)
            for n in range(PARALLEL)
        )
    )
    assert [r["data"]["uninstallPlugin"] for r in results if not r.get("errors")] == [True]
    assert codes(results) == ["NOT_INSTALLED"] * (PARALLEL - 1)
    assert (await audit_actions(first, pro_user)).count("plugin.uninstall") == 1


async def test_parallel_writes_and_uninstalls_agree(make_app, pro_user):
    first = await make_app()
    second = await make_app()
    welcome = await plugin_id(first, "welcome")
    await first.graphql(INSTALL, {"id": welcome}, user=pro_user)

    calls = []
    for n in range(PARALLEL):
        app = first if n % 2 else second
        calls.append(app.graphql_response(UNINSTALL, {"id": welcome}, user=pro_user))
        calls.append(app.graphql_response(CONFIGURE, {"id": welcome, "config": {"chats": [n]}}, user=pro_user))
        calls.append(app.graphql_response(TOGGLE, {"id": welcome, "on": n % 2 == 0}, user=pro_user))
    results = await asyncio.gather(*calls)

    # A config update that read the install before a toggle changed its state writes nothing and
    # says so (its write is conditional on the state it read); anything else meets the uninstall.
    refused = [r["errors"][0] for r in results if r.get("errors")]
    assert {e["extensions"]["code"] for e in refused} <= {"NOT_INSTALLED", "BAD_USER_INPUT"}
    assert all("changed meanwhile" in e["message"] for e in refused if e["extensions"]["code"] == "BAD_USER_INPUT")
    assert sum(1 for r in results[0::3] if not r.get("errors")) == 1
    actions = await audit_actions(first, pro_user)
    assert actions.count("plugin.uninstall") == 1
    # Every config update that answered success is in the audit log, and no write came after the uninstall.
    configured = sum(1 for r in results[1::3] if not r.get("errors"))
    toggled = sum(1 for r in results[2::3] if not r.get("errors"))
    assert actions.count("plugin.config_update") == configured
    assert actions.count("plugin.toggle") <= toggled  # a toggle to the state it has already changes nothing
    assert actions[-1] == "plugin.uninstall"


@pytest.mark.parametrize(
    ("mutation", "variables"),
    [
        (CONFIGURE, {"config": {"message": "Hi {first_name}"}}),
        (TOGGLE, {"on": False}),
        (UNINSTALL, {}),
    ],
)
async def test_a_write_meeting_a_concurrent_uninstall_is_not_installed(make_app, pro_user, mutation, variables):
    first = await make_app()
    other = await make_app()
    welcome = await plugin_id(first, "welcome")
    install = (await first.graphql(INSTALL, {"id": welcome}, user=pro_user))["installPlugin"]

    async with uninstalled_by_another_process(other, install["id"], hold_seconds=0.5):
        call = asyncio.create_task(first.graphql_response(mutation, {"id": welcome, **variables}, user=pro_user))
    error = (await call)["errors"][0]

    assert error["extensions"]["code"] == "NOT_INSTALLED"
    assert await audit_actions(first, pro_user) == ["plugin.install"]


# -- the order of an install's checks ---------------------------------------------------------


INVALID_CONFIG = {"chats": ["x", *range(5000)]}  # costly to validate, and invalid


async def test_a_plan_limit_is_reached_before_the_config_is_validated(app, user):
    await app.graphql(INSTALL, {"id": await plugin_id(app, "analytics")}, user=user)  # free: one plugin
    error = await app.graphql_error(
        INSTALL, {"id": await plugin_id(app, "welcome"), "config": INVALID_CONFIG}, user=user
    )
    assert error["extensions"]["code"] == "PLAN_LIMIT_REACHED"


async def test_an_install_that_exists_is_refused_before_the_config_is_validated(app, pro_user):
    welcome = await plugin_id(app, "welcome")
    await app.graphql(INSTALL, {"id": welcome}, user=pro_user)
    error = await app.graphql_error(INSTALL, {"id": welcome, "config": INVALID_CONFIG}, user=pro_user)
    assert error["extensions"]["code"] == "ALREADY_INSTALLED"


async def test_an_install_with_room_still_has_its_config_validated(app, pro_user):
    error = await app.graphql_error(
        INSTALL, {"id": await plugin_id(app, "welcome"), "config": INVALID_CONFIG}, user=pro_user
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
