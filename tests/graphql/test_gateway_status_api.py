"""A gateway's status, delivery and health over GraphQL.

The states other parts produce (a rejected token, a failing webhook, a polling conflict, a health
check's figures) are arranged by writing the gateway's row: these tests are about what the API shows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from app.gateways.models import Delivery, Gateway, GatewayStatus

CONNECT = "mutation($token: String!) { connectTelegramBot(token: $token) { id status statusReason delivery health { checkedAt } } }"
DISCONNECT = "mutation($id: ID!) { disconnectGateway(gatewayId: $id) }"
MY_GATEWAYS = """{ myGateways { id isActive status statusReason delivery
  health { pendingUpdates lastErrorAt lastErrorMessage checkedAt } } }"""
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


async def connected(app, user, telegram) -> str:
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    return (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]["id"]


async def arrange(app, gateway_id: str, **columns: Any) -> None:
    with app.db():
        await Gateway.filter(id=gateway_id).update(**columns)


async def shown(app, user) -> dict[str, Any]:
    [gateway] = (await app.graphql(MY_GATEWAYS, user=user))["myGateways"]
    return gateway


async def test_a_newly_connected_bot_is_active_by_webhook(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    gateway = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    assert (gateway["status"], gateway["statusReason"], gateway["delivery"]) == ("ACTIVE", None, "WEBHOOK")


@pytest.mark.parametrize(
    "status", [GatewayStatus.TOKEN_REJECTED, GatewayStatus.WEBHOOK_FAILING, GatewayStatus.POLLING_CONFLICT]
)
async def test_status_and_its_reason_are_the_gateways(app, user, telegram, status):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, status=status, status_reason=f"because {status.value}")
    gateway = await shown(app, user)
    # isActive: connected and working; a bot whose token Telegram refuses is connected but works no more.
    working = status != GatewayStatus.TOKEN_REJECTED
    assert (gateway["isActive"], gateway["status"], gateway["statusReason"]) == (
        working,
        status.value,
        f"because {status.value}",
    )


async def test_a_gateway_that_is_not_active_is_disconnected_whatever_its_last_status(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, is_active=False, status=GatewayStatus.TOKEN_REJECTED, status_reason="refused")
    gateway = await shown(app, user)
    assert (gateway["isActive"], gateway["status"], gateway["statusReason"]) == (False, "DISCONNECTED", None)


async def test_a_disconnected_gateway_keeps_the_reason_it_was_disconnected_for(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, is_active=False, status=GatewayStatus.DISCONNECTED, status_reason="replaced")
    assert (await shown(app, user))["statusReason"] == "replaced"


async def test_disconnecting_shows_disconnected(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await app.graphql(DISCONNECT, {"id": gateway_id}, user=user)
    assert (await shown(app, user))["status"] == "DISCONNECTED"


@pytest.mark.parametrize("delivery", list(Delivery))
async def test_delivery_is_the_gateways(app, user, telegram, delivery):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, delivery=delivery)
    assert (await shown(app, user))["delivery"] == delivery.value


async def test_health_shows_what_telegram_reported_at_the_last_check(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    error_at = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
    checked_at = datetime(2025, 3, 1, 12, 31, 0, tzinfo=UTC)
    await arrange(
        app,
        gateway_id,
        status=GatewayStatus.WEBHOOK_FAILING,
        pending_updates=42,
        last_error_at=error_at,
        last_error_message="Wrong response from the webhook: 503 Service Unavailable",
        checked_at=checked_at,
    )
    health = (await shown(app, user))["health"]
    assert health["pendingUpdates"] == 42
    assert datetime.fromisoformat(health["lastErrorAt"]) == error_at
    assert health["lastErrorMessage"] == "Wrong response from the webhook: 503 Service Unavailable"
    assert datetime.fromisoformat(health["checkedAt"]) == checked_at


async def test_a_healthy_check_has_no_error(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, pending_updates=0, checked_at=datetime(2025, 3, 1, tzinfo=UTC))
    health = (await shown(app, user))["health"]
    assert (health["pendingUpdates"], health["lastErrorAt"], health["lastErrorMessage"]) == (0, None, None)
    assert health["checkedAt"] is not None


async def test_health_is_null_until_the_bot_is_checked(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await arrange(app, gateway_id, checked_at=None, pending_updates=None)
    assert (await shown(app, user))["health"] is None


async def test_no_new_field_shows_the_token_or_the_secret(app, user, telegram):
    gateway_id = await connected(app, user, telegram)
    await arrange(
        app, gateway_id, status=GatewayStatus.TOKEN_REJECTED, status_reason="refused", checked_at=datetime.now(UTC)
    )
    with app.db():
        secret = (await Gateway.get(id=gateway_id)).secret
    body = json.dumps(await app.graphql_response(MY_GATEWAYS, user=user))
    assert TOKEN not in body and secret not in body
