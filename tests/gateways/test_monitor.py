"""Bot health (app/gateways/monitor.py): checkGateway and the monitor's rounds compare each bot with
what Telegram's getWebhookInfo reports (the strict fake's), show a failing webhook with Telegram's
words and the pending count, repair a drifted registration, and run in one process at a time."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from app.gateways import leases
from app.gateways.models import Gateway, GatewayStatus
from app.gateways.monitor import LEASE
from app.gateways.status import TOKEN_REJECTED_REASON
from tests.fakes.telegram import FakeTelegram
from tests.support.eventually import eventually
from tests.support.installs_api import audit_events, install_via_api
from tests.support.live import LiveApp, TestUser
from tests.support.outage import database_down, short_busy_timeout
from tests.support.runtime import ConnectedBot, connect_bot
from tests.support.telegram_updates import message_update

PUBLIC = "https://plugboard.example"
CHECK = (
    "mutation($id: ID!) { checkGateway(gatewayId: $id) { id status statusReason isActive "
    "health { pendingUpdates lastErrorAt lastErrorMessage checkedAt } } }"
)


async def check(app: LiveApp, user: TestUser, bot: ConnectedBot) -> dict[str, Any]:
    return (await app.graphql(CHECK, {"id": bot.gateway_id}, user=user))["checkGateway"]


def hook_of(bot: ConnectedBot) -> str:
    return f"{PUBLIC}/webhooks/telegram/{bot.gateway_id}"


async def status_events(app: LiveApp, user: TestUser) -> list[tuple[str, str, str | None]]:
    return [(e["from"], e["to"], e.get("reason")) for e in await audit_events(app, user, "gateway.status")]


async def set_webhook_elsewhere(telegram: FakeTelegram, token: str) -> None:
    """Another program calls setWebhook with the bot's token."""
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{telegram.url}/bot{token}/setWebhook",
            json={"url": "https://elsewhere.example/hook", "allowed_updates": ["poll"]},
        )
    assert answer.json()["ok"] is True


# --- checkGateway ---------------------------------------------------------------------------------


async def test_a_webhook_telegram_cannot_reach_is_failing_with_its_words_and_recovers(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    telegram.fail_webhook(bot.token, "Connection refused", pending=12)

    failing = await check(app, user, bot)

    reason = (
        f"Telegram cannot deliver updates to {hook_of(bot)}: Connection refused; 12 updates wait. "
        "Check that PUBLIC_URL reaches this server."
    )
    assert (failing["status"], failing["statusReason"], failing["isActive"]) == ("WEBHOOK_FAILING", reason, True)
    health = failing["health"]
    assert (health["pendingUpdates"], health["lastErrorMessage"]) == (12, "Connection refused")
    assert health["lastErrorAt"] is not None and health["checkedAt"] is not None

    telegram.route_webhooks(PUBLIC, to=app.url)  # Telegram reaches us again: what waited goes through
    assert (await telegram.deliver(bot.token, message_update(1))).status == "delivered"
    healthy = await check(app, user, bot)

    assert (healthy["status"], healthy["statusReason"]) == ("ACTIVE", None)
    assert healthy["health"]["pendingUpdates"] == 0
    assert healthy["health"]["lastErrorMessage"] == "Connection refused"  # Telegram still reports its last error
    assert await status_events(app, user) == [
        ("ACTIVE", "WEBHOOK_FAILING", reason),
        ("WEBHOOK_FAILING", "ACTIVE", None),
    ]


async def test_failing_the_same_way_again_updates_the_figures_without_another_event(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    telegram.fail_webhook(bot.token, "Connection timed out", pending=3)
    assert (await check(app, user, bot))["status"] == "WEBHOOK_FAILING"
    telegram.fail_webhook(bot.token, "Connection timed out", pending=2)

    again = await check(app, user, bot)

    assert again["status"] == "WEBHOOK_FAILING"
    assert "Connection timed out; 5 updates wait." in again["statusReason"]
    assert again["health"]["pendingUpdates"] == 5
    assert len(await status_events(app, user)) == 1

    telegram.fail_webhook(bot.token, "Wrong response from the webhook: 503 Service Unavailable", pending=1)
    other = await check(app, user, bot)
    assert "Wrong response from the webhook: 503 Service Unavailable; 6 updates wait." in other["statusReason"]
    assert [(before, after) for before, after, _ in await status_events(app, user)] == [
        ("ACTIVE", "WEBHOOK_FAILING"),
        ("WEBHOOK_FAILING", "WEBHOOK_FAILING"),  # another error: an event of its own
    ]


async def test_updates_piling_up_at_telegram_is_failing_without_an_error(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    assert (await check(app, user, bot))["health"]["pendingUpdates"] == 0
    telegram.bot(bot.token).backlog = 4  # Telegram holds updates it has not delivered, with no error (yet)

    piling = await check(app, user, bot)

    assert piling["status"] == "WEBHOOK_FAILING"
    assert piling["statusReason"] == (
        f"Telegram is not delivering updates to {hook_of(bot)}: 4 updates wait, up from 0 at the last check. "
        "Check that PUBLIC_URL reaches this server."
    )


async def test_an_old_error_or_one_with_nothing_waiting_is_healthy(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    fake = telegram.bot(bot.token)
    fake.last_error_date, fake.last_error_message = int(time.time()) - 3600, "Connection timed out"
    fake.backlog = 2
    old = await check(app, user, bot)
    assert old["status"] == "ACTIVE"  # an hour ago: before GATEWAY_HEALTH_SECONDS (300)
    assert old["health"]["lastErrorMessage"] == "Connection timed out"

    fake.last_error_date, fake.backlog = int(time.time()), 0
    assert (await check(app, user, bot))["status"] == "ACTIVE"  # delivered since: nothing waits


async def test_a_token_telegram_refuses_on_a_check_is_token_rejected(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    telegram.revoke(bot.token)

    checked = await check(app, user, bot)

    assert (checked["status"], checked["statusReason"]) == ("TOKEN_REJECTED", TOKEN_REJECTED_REASON)
    assert checked["isActive"] is False


async def test_telegram_unreachable_on_a_check_changes_nothing(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    telegram.fail_next("getWebhookInfo", status=502, description="Bad Gateway")
    unchanged = await check(app, user, bot)
    assert (unchanged["status"], unchanged["health"]) == ("ACTIVE", None)  # never checked
    assert (await check(app, user, bot))["health"]["pendingUpdates"] == 0


async def test_check_gateway_answers_only_for_the_callers_gateways(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    other = await app.create_user("mallory@example.com")
    calls = len(telegram.calls)
    for gateway_id in (bot.gateway_id, "0" * 32, "not an id"):
        error = await app.graphql_error(CHECK, {"id": gateway_id}, user=other)
        assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", "No such gateway")
    error = await app.graphql_error(CHECK, {"id": bot.gateway_id})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert telegram.calls[calls:] == []


async def test_a_disconnected_gateway_is_returned_unchecked(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    await app.graphql("mutation($id: ID!) { disconnectGateway(gatewayId: $id) }", {"id": bot.gateway_id}, user=user)
    calls = len(telegram.calls)
    checked = await check(app, user, bot)
    assert (checked["status"], checked["isActive"]) == ("DISCONNECTED", False)
    assert telegram.calls[calls:] == []


# --- the monitor ----------------------------------------------------------------------------------


def monitor_calls(telegram: FakeTelegram) -> int:
    return telegram.methods_called().count("getWebhookInfo")


async def test_the_monitor_repairs_a_drifted_registration_on_its_own(make_app, telegram):
    app = await make_app(gateway_health_seconds=0.2)
    user = await app.create_user("watched@example.com")
    await install_via_api(app, user, "analytics")
    bot = await connect_bot(app, user, telegram)
    await set_webhook_elsewhere(telegram, bot.token)

    await eventually(lambda: telegram.bot(bot.token).webhook_url == hook_of(bot), "the webhook pointed back here")
    assert sorted(telegram.bot(bot.token).allowed_types) == ["channel_post", "chat_member", "message", "my_chat_member"]
    assert telegram.bot(bot.token).secret_token == bot.secret
    assert app.http is not None
    health = (await app.http.get("/healthz")).json()
    assert health["gateway-monitor"] == "ok"


@pytest.mark.slow
async def test_the_monitor_runs_in_one_process_and_another_takes_over_when_it_stops(make_app, telegram):
    first = await make_app(gateway_health_seconds=0.2)
    second = await make_app(gateway_health_seconds=0.2)
    user = await first.create_user("two@example.com")
    await connect_bot(first, user, telegram)
    holder, other = first.platform.monitor, second.platform.monitor
    assert holder.holds_lease and not other.holds_lease  # the first to start took it

    rounds = holder.rounds
    await eventually(lambda: holder.rounds >= rounds + 3, "three more rounds")
    assert (other.rounds, other.holds_lease) == (0, False)
    with first.db():
        assert await leases.holder_of(LEASE) == holder.holder

    await first.stop()  # gives the lease back
    await eventually(lambda: other.rounds >= 1, "the second process's first round")
    assert other.holds_lease
    calls = monitor_calls(telegram)
    await eventually(lambda: monitor_calls(telegram) > calls, "the bot checked by the second process")
    with second.db():
        assert await leases.holder_of(LEASE) == other.holder


@pytest.mark.slow
async def test_a_monitor_whose_holder_died_is_taken_over_once_its_lease_runs_out(make_app, telegram):
    first = await make_app(gateway_health_seconds=0.2)
    second = await make_app(gateway_health_seconds=0.2)
    holder, other = first.platform.monitor, second.platform.monitor
    assert holder.holds_lease
    holder._held = False  # as if it died: it neither renews nor gives the lease back
    await first.platform.monitor.stop()
    assert not other.holds_lease
    await eventually(lambda: other.holds_lease, "the lease taken over once it ran out")


async def test_the_monitor_works_again_once_the_database_is_back(make_app, telegram, faulty_database_url):
    app = await make_app(gateway_health_seconds=0.2, database_url=faulty_database_url)
    with app.db() as db:
        await short_busy_timeout(db)
    user = await app.create_user("outage@example.com")
    bot = await connect_bot(app, user, telegram)
    monitor = app.platform.monitor
    failed = monitor.failed_turns

    async with database_down(faulty_database_url):
        await set_webhook_elsewhere(telegram, bot.token)  # while nothing can be written
        await eventually(lambda: monitor.failed_turns > failed, "a turn that failed on the database")

    await eventually(lambda: telegram.bot(bot.token).webhook_url == hook_of(bot), "the webhook pointed back here")
    with app.db():
        gateway = await Gateway.get(id=bot.gateway_id)
    assert gateway.status == GatewayStatus.ACTIVE
    assert monitor.running
