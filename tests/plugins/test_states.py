"""Install states: each install is ACTIVE, DISABLED, WAITING_FOR_GATEWAY, NEEDS_CONFIG or FAILING,
with a reason in words. Every change is an audit event and a new routing version, and every
process routes by the new state from its next claim."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import Any

from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from app.plugins.models import RunRecord
from tests.support.flaky import FlakyPlugin
from tests.support.installs_api import (
    CONNECT,
    DISCONNECT,
    TOGGLE,
    audit_events,
    install_via_api,
    my_install,
    plugin_id,
    routing_version,
    status_changes,
    toggle,
    update_config,
)
from tests.support.live import LiveApp
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update, user

WAITING_FOR_A_BOT = "Waiting for a Telegram bot: connect one and this plugin starts"


def new_token() -> str:
    return f"{secrets.randbelow(10**9) + 1}:{secrets.token_urlsafe(30)}"


async def runs_recorded(app: LiveApp, install_id: str) -> int:
    with app.db():
        return await RunRecord.filter(install_id=install_id).count()


# --- waiting for a gateway ------------------------------------------------------------------


async def test_a_plugin_that_needs_a_bot_installs_waiting_for_one_and_says_so(app, pro_user):
    user = pro_user
    for slug in ("welcome", "analytics"):
        installed = await install_via_api(app, user, slug)
        assert installed["isEnabled"] is True  # what its user asked for
        assert (installed["status"], installed["statusReason"]) == ("WAITING_FOR_GATEWAY", WAITING_FOR_A_BOT)
    installs = await audit_events(app, user, "plugin.install")
    assert [(e["slug"], e["status"]) for e in installs] == [
        ("welcome", "WAITING_FOR_GATEWAY"),
        ("analytics", "WAITING_FOR_GATEWAY"),
    ]


async def test_a_plugin_installed_with_a_bot_connected_is_active(app, user, telegram):
    await connect_bot(app, user, telegram)
    installed = await install_via_api(app, user, "welcome")
    assert (installed["status"], installed["statusReason"]) == ("ACTIVE", None)


async def test_connecting_a_bot_starts_the_installs_waiting_for_one(app, pro_user, telegram):
    user = pro_user
    await install_via_api(app, user, "welcome")
    await install_via_api(app, user, "analytics")
    token = new_token()
    fake = telegram.add_bot(token, "greeter_bot")

    gateway = (await app.graphql(CONNECT, {"token": token}, user=user))["connectTelegramBot"]

    for slug in ("welcome", "analytics"):
        assert (await my_install(app, user, slug))["status"] == "ACTIVE"
        assert await status_changes(app, user, slug) == [("WAITING_FOR_GATEWAY", "ACTIVE", "gateways changed")]
    # It runs: a new member is greeted.
    assert fake.secret_token
    response = await app.http.post(
        f"/webhooks/telegram/{gateway['id']}",
        json=new_members_update(1, user_payload("Grace"), chat_id=-42),
        headers={"X-Telegram-Bot-Api-Secret-Token": fake.secret_token},
    )
    assert response.status_code == 200
    await wait_until_processed(app)
    assert [m["text"] for m in fake.sent_messages] == ["Welcome, Grace!"]


def user_payload(first_name: str) -> dict[str, Any]:
    return user(7, first_name)


async def test_disconnecting_the_bot_makes_its_installs_wait_again(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    await install_via_api(app, user, "welcome")

    assert (await app.graphql(DISCONNECT, {"id": bot.gateway_id}, user=user))["disconnectGateway"] is True

    welcome = await my_install(app, user, "welcome")
    assert (welcome["status"], welcome["statusReason"]) == ("WAITING_FOR_GATEWAY", WAITING_FOR_A_BOT)
    assert await status_changes(app, user, "welcome") == [("ACTIVE", "WAITING_FOR_GATEWAY", "gateways changed")]


async def test_a_bot_connected_again_keeps_its_plugins_running(make_app, telegram):
    app = await make_app(handlers=[FlakyPlugin()])
    user = await app.create_user("twobots@example.com", "pro")
    first = await connect_bot(app, user, telegram, "first_bot")
    installed = await install(app, user, "flaky")
    await deliver(app, first, message_update(1))
    await wait_until_processed(app)  # the owner's routes are cached now, with the first bot
    assert await runs_recorded(app, installed.id) == 1

    second = await connect_bot(app, user, telegram, "second_bot")  # another bot of the same owner
    assert (await deliver(app, second, message_update(2))).status_code == 200
    await wait_until_processed(app)

    assert await runs_recorded(app, installed.id) == 2


# --- disabled by its user -------------------------------------------------------------------


async def test_a_disabled_install_does_not_run_and_runs_again_once_enabled(make_app, telegram):
    plugin = FlakyPlugin()
    live = await make_app(handlers=[plugin])
    owner = await live.create_user("toggler@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    version = await routing_version(live, owner)

    disabled = await toggle(live, owner, "flaky", False)
    assert (disabled["isEnabled"], disabled["status"], disabled["statusReason"]) == (
        False,
        "DISABLED",
        "Turned off by its user",
    )
    assert await routing_version(live, owner) == version + 1
    await deliver(live, bot, message_update(1, text="while off"))
    await wait_until_processed(live)
    assert plugin.calls == []
    assert (await my_install(live, owner, "flaky"))["executionCount"] == 0

    enabled = await toggle(live, owner, "flaky", True)
    assert (enabled["isEnabled"], enabled["status"], enabled["statusReason"]) == (True, "ACTIVE", None)
    assert await routing_version(live, owner) == version + 2
    await deliver(live, bot, message_update(2, text="back on"))
    await wait_until_processed(live)
    assert [call.text for call in plugin.calls] == ["back on"]

    changes = [e for e in await audit_events(live, owner, "plugin.status") if e["slug"] == "flaky"]
    assert changes == [
        {
            "slug": "flaky",
            "from": "ACTIVE",
            "to": "DISABLED",
            "reason": "Turned off by its user",
            "why": "disabled by its user",
        },
        {"slug": "flaky", "from": "DISABLED", "to": "ACTIVE", "reason": None, "why": "enabled by its user"},
    ]


async def test_toggling_to_the_state_it_is_in_changes_nothing(app, user, telegram):
    await connect_bot(app, user, telegram)
    await install_via_api(app, user, "welcome")
    version = await routing_version(app, user)
    assert (await toggle(app, user, "welcome", True))["status"] == "ACTIVE"
    assert await routing_version(app, user) == version
    assert await status_changes(app, user, "welcome") == []


async def test_enabling_an_install_without_its_gateway_waits_for_one(app, user):
    await install_via_api(app, user, "welcome")
    assert (await toggle(app, user, "welcome", False))["status"] == "DISABLED"
    enabled = await toggle(app, user, "welcome", True)
    assert (enabled["status"], enabled["statusReason"]) == ("WAITING_FOR_GATEWAY", WAITING_FOR_A_BOT)
    assert await status_changes(app, user, "welcome") == [
        ("WAITING_FOR_GATEWAY", "DISABLED", "disabled by its user"),
        ("DISABLED", "WAITING_FOR_GATEWAY", "enabled by its user"),
    ]


async def test_concurrent_toggles_change_the_state_once(app, user, telegram):
    await connect_bot(app, user, telegram)
    await install_via_api(app, user, "welcome")
    version = await routing_version(app, user)
    variables = {"id": await plugin_id(app, "welcome"), "enabled": False}

    results = await asyncio.gather(*(app.graphql_response(TOGGLE, variables, user=user) for _ in range(6)))

    assert all(not r.get("errors") and r["data"]["togglePlugin"]["status"] == "DISABLED" for r in results), results
    assert await status_changes(app, user, "welcome") == [("ACTIVE", "DISABLED", "disabled by its user")]
    assert len(await audit_events(app, user, "plugin.toggle")) == 1
    assert await routing_version(app, user) == version + 1


async def test_every_process_routes_by_the_new_state_from_its_next_claim(make_app, telegram):
    plugin = FlakyPlugin()
    worker = await make_app(handlers=[plugin])  # processes events
    api = await make_app(handlers=[plugin], inbox_concurrency=0)  # another process: serves the API only
    owner = await api.create_user("two@example.com", "pro")
    bot = await connect_bot(api, owner, telegram)
    await install_via_api(api, owner, "flaky")

    await deliver(api, bot, message_update(1, text="first"))
    await wait_until_processed(worker)  # the worker has cached the owner's routes
    await toggle(api, owner, "flaky", False)
    await deliver(api, bot, message_update(2, text="while off"))
    await wait_until_processed(worker)
    await toggle(api, owner, "flaky", True)
    await deliver(api, bot, message_update(3, text="on again"))
    await wait_until_processed(worker)

    assert [call.text for call in plugin.calls] == ["first", "on again"]


# --- needs config ---------------------------------------------------------------------------


class AnalyticsV2(AnalyticsHandler):
    """Caps the retention at 90 days."""

    schema: dict[str, Any] = {
        **AnalyticsHandler.definition.config_schema,
        "properties": {
            **AnalyticsHandler.definition.config_schema["properties"],
            "retention": {**AnalyticsHandler.definition.config_schema["properties"]["retention"], "maximum": 90},
        },
    }
    definition = replace(AnalyticsHandler.definition, version="2.0.0", config_schema=schema)


async def test_enabling_an_install_whose_config_no_longer_fits_needs_config_until_it_is_fixed(make_app, telegram):
    v1 = await make_app(handlers=[AnalyticsHandler(), WelcomeHandler()])
    owner = await v1.create_user("keeper@example.com", "pro")
    await connect_bot(v1, owner, telegram)
    await install_via_api(v1, owner, "analytics", {"retention": 365})
    await toggle(v1, owner, "analytics", False)
    await v1.stop()

    v2 = await make_app(handlers=[AnalyticsV2(), WelcomeHandler()])
    assert (await my_install(v2, owner, "analytics"))["status"] == "DISABLED"  # off stays off
    enabled = await toggle(v2, owner, "analytics", True)
    assert enabled["isEnabled"] is True
    assert enabled["status"] == "NEEDS_CONFIG"
    assert "365 is greater than the maximum of 90" in enabled["statusReason"]

    fixed = await update_config(v2, owner, "analytics", {"retention": 90})
    assert (fixed["status"], fixed["statusReason"], fixed["configVersion"]) == ("ACTIVE", None, "2.0.0")
    assert [(f, t) for f, t, _ in await status_changes(v2, owner, "analytics")] == [
        ("ACTIVE", "DISABLED"),
        ("DISABLED", "NEEDS_CONFIG"),
        ("NEEDS_CONFIG", "ACTIVE"),
    ]


async def test_an_invalid_config_update_leaves_needs_config_and_the_config_as_they_were(make_app, telegram):
    v1 = await make_app(handlers=[AnalyticsHandler()])
    owner = await v1.create_user("stubborn@example.com", "pro")
    await connect_bot(v1, owner, telegram)
    await install_via_api(v1, owner, "analytics", {"retention": 365})
    await v1.stop()
    v2 = await make_app(handlers=[AnalyticsV2()])
    before = await my_install(v2, owner, "analytics")
    assert before["status"] == "NEEDS_CONFIG"

    error = await v2.graphql_error(
        "mutation($id: ID!) { updatePluginConfig(pluginId: $id, config: {retention: 200}) { status } }",
        {"id": await plugin_id(v2, "analytics")},
        user=owner,
    )

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await my_install(v2, owner, "analytics") == before


class Reminder(FlakyPlugin):
    """Version 1 keeps `every` in minutes."""

    def __init__(self) -> None:
        super().__init__("reminder")
        schema = {"type": "object", "properties": {"every": {"type": "integer", "minimum": 1, "default": 60}}}
        self.definition = replace(self.definition, config_schema=schema)  # type: ignore[misc]


class ReminderV2(Reminder):
    """Version 2 keeps `every` in hours: same name, same type, another meaning. A number of
    minutes that is not whole hours cannot be migrated."""

    def __init__(self) -> None:
        super().__init__()
        self.definition = replace(self.definition, version="2.0.0")  # type: ignore[misc]

    def migrate_config(self, from_version: str | None, config: dict[str, Any]) -> dict[str, Any]:
        if config["every"] % 60:
            raise ValueError(f"{config['every']} minutes is not a whole number of hours")
        return {"every": config["every"] // 60}


async def test_a_disabled_install_whose_config_could_not_be_migrated_needs_config_once_enabled(make_app, telegram):
    v1 = await make_app(handlers=[Reminder()])
    owner = await v1.create_user("minutes@example.com", "pro")
    await connect_bot(v1, owner, telegram)
    await install_via_api(v1, owner, "reminder", {"every": 90})
    await toggle(v1, owner, "reminder", False)
    await v1.stop()

    v2 = await make_app(handlers=[ReminderV2()])
    enabled = await toggle(v2, owner, "reminder", True)

    assert enabled["status"] == "NEEDS_CONFIG"  # 90 would now mean 90 hours
    assert enabled["statusReason"] == (
        "Plugin upgraded to 2.0.0; the config could not be migrated: 90 minutes is not a whole number of hours"
    )
    assert enabled["configVersion"] == "1.0.0"
