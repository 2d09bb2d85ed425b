"""A bot whose token Telegram refuses (401), and its reconnect.

A 401 to a call for a connected bot makes its gateway TOKEN_REJECTED, once: it is no longer a
working gateway (GraphQL `isActive` false), its owner's installs that need it wait with a reason
that says to reconnect it, and its webhook answers 401. Connecting the same bot again with its new
token, by the same owner, brings the same gateway back with its installs, runs and analytics.
Updates come through the fake Bot API's webhook delivery (route_webhooks), as Telegram sends them.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from app.audit.models import AuditLog
from app.gateways.models import Gateway, GatewayStatus
from app.gateways.service import webhook_url
from app.gateways.status import TOKEN_REJECTED_REASON
from app.gateways.telegram import TokenRejected
from app.plugins.models import InstallStatus, UserPlugin
from tests.fakes.telegram import FakeTelegram
from tests.gateways.test_connect_races import database_refusing_inserts
from tests.support.eventually import eventually
from tests.support.installs_api import DISCONNECT, audit_events, install_via_api, my_install, runs_of
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import SECRET_HEADER, analytics_counts, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update
from tests.support.telegram_updates import user as tg_user

CONNECT = "mutation($token: String!) { connectTelegramBot(token: $token) { id isActive status statusReason } }"
MY_GATEWAYS = "{ myGateways { id isActive status statusReason } }"
CHAT = -100200
WAITING_FOR_A_BOT = "Waiting for a Telegram bot: connect one and this plugin starts"
REFUSED_WAITING = (
    "Waiting for the Telegram bot: Telegram refused its token (it was revoked in @BotFather, "
    "or the bot was deleted). Reconnect the bot with its new token and this plugin starts"
)


def new_token(bot_id: int | None = None) -> str:
    return f"{bot_id or secrets.randbelow(10**9) + 1}:{secrets.token_urlsafe(30)}"


async def connect(app: LiveApp, user: TestUser, token: str) -> dict[str, Any]:
    return (await app.graphql(CONNECT, {"token": token}, user=user))["connectTelegramBot"]


async def gateway_row(app: LiveApp, gateway_id: str) -> Gateway:
    with app.db():
        return await Gateway.get(id=gateway_id)


async def shown(app: LiveApp, user: TestUser) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in (await app.graphql(MY_GATEWAYS, user=user))["myGateways"]}


async def status_events(app: LiveApp, gateway_id: str) -> list[dict[str, Any]]:
    with app.db():
        rows = await AuditLog.filter(action="gateway.status", target_id=gateway_id).order_by("created_at", "id")
    return [row.metadata for row in rows]


async def post_to_webhook(app: LiveApp, gateway_id: str, secret: str, update: dict[str, Any]) -> int:
    """An update posted straight to the app's webhook (the lenient path): the answer's status."""
    assert app.http is not None
    response = await app.http.post(f"/webhooks/telegram/{gateway_id}", json=update, headers={SECRET_HEADER: secret})
    return response.status_code


async def a_bot_with_running_plugins(app: LiveApp, user: TestUser, telegram: FakeTelegram) -> tuple[str, str]:
    """A bot connected, then Welcome and Channel Analytics installed; Telegram delivers to the app.
    Returns (token, gateway id)."""
    token = new_token()
    telegram.add_bot(token, "health_bot")
    telegram.route_webhooks(app.settings.public_url, to=app.url)
    gateway = await connect(app, user, token)
    for slug in ("welcome", "analytics"):
        assert (await install_via_api(app, user, slug))["status"] == "ACTIVE"
    return token, gateway["id"]


async def delivered(telegram: FakeTelegram, token: str, update: dict[str, Any]) -> None:
    result = await telegram.deliver(token, update)
    assert result.status == "delivered", result


# --- a 401 on a send -------------------------------------------------------------------------


async def test_a_send_refused_with_401_makes_the_bot_token_rejected_and_its_installs_wait(app, pro_user, telegram):
    user = pro_user
    token, gateway_id = await a_bot_with_running_plugins(app, user, telegram)
    bot = telegram.bot(token)
    await delivered(telegram, token, message_update(1, chat_id=CHAT))
    await wait_until_processed(app)
    secret = bot.secret_token
    assert secret

    telegram.revoke(token)  # revoked in @BotFather: Telegram answers 401 to every call
    # An update the webhook took before (or whatever Telegram still had): Welcome greets, and its send gets 401.
    assert (
        await post_to_webhook(app, gateway_id, secret, new_members_update(2, tg_user(7, "Grace"), chat_id=CHAT)) == 200
    )
    await wait_until_processed(app)

    row = await gateway_row(app, gateway_id)
    assert (row.is_active, row.status, row.status_reason) == (True, GatewayStatus.TOKEN_REJECTED, TOKEN_REJECTED_REASON)
    assert await status_events(app, gateway_id) == [
        {"from": "ACTIVE", "to": "TOKEN_REJECTED", "reason": TOKEN_REJECTED_REASON}
    ]
    # The run that got the 401 failed with Telegram's refusal in words.
    [greeting, _first] = await runs_of(app, user, "welcome")
    assert greeting["outcome"] == "FAILED" and "rejected the bot token" in greeting["error"]
    # Its installs wait for the bot, saying why and what to do.
    for slug in ("welcome", "analytics"):
        install = await my_install(app, user, slug)
        assert (install["status"], install["statusReason"]) == ("WAITING_FOR_GATEWAY", REFUSED_WAITING)
    assert [e["to"] for e in await audit_events(app, user, "plugin.status")] == ["WAITING_FOR_GATEWAY"] * 2
    # Connected, but not working: isActive false, the status says why.
    gateway = (await shown(app, user))[gateway_id]
    assert gateway == {
        "id": gateway_id,
        "isActive": False,
        "status": "TOKEN_REJECTED",
        "statusReason": TOKEN_REJECTED_REASON,
    }
    # Its webhook refuses updates, even with the right secret.
    assert await post_to_webhook(app, gateway_id, secret, message_update(3, chat_id=CHAT)) == 401
    # A plugin's send through it fails at once, without calling Telegram.
    calls = len(telegram.calls)
    with app.db(), pytest.raises(TokenRejected, match="Reconnect the bot"):
        await app.platform.gateways.execute(user.id, gateway_id, "sendMessage", {"chat_id": CHAT, "text": "hi"})
    assert len(telegram.calls) == calls


async def test_concurrent_sends_refused_with_401_change_the_status_once(app, user, telegram):
    token = new_token()
    telegram.add_bot(token, "busy_bot")
    gateway_id = (await connect(app, user, token))["id"]
    telegram.revoke(token)

    async def send(n: int) -> BaseException | None:
        with app.db():
            try:
                await app.platform.gateways.execute(user.id, gateway_id, "sendMessage", {"chat_id": n, "text": "hi"})
            except Exception as exc:
                return exc
        return None

    errors = await asyncio.gather(*(send(n) for n in range(1, 6)))
    assert all(isinstance(e, TokenRejected) for e in errors), errors
    assert await status_events(app, gateway_id) == [
        {"from": "ACTIVE", "to": "TOKEN_REJECTED", "reason": TOKEN_REJECTED_REASON}
    ]


async def test_another_process_refuses_the_webhook_within_its_cache_time(make_app, user, telegram):
    first = await make_app()
    second = await make_app()
    token = new_token()
    bot = telegram.add_bot(token, "two_process_bot")
    gateway_id = (await connect(first, user, token))["id"]
    assert bot.secret_token
    assert await post_to_webhook(second, gateway_id, bot.secret_token, message_update(1)) == 200  # cached there now

    with first.db():
        assert await first.platform.gateways.token_rejected(gateway_id, token) is True
        assert await first.platform.gateways.token_rejected(gateway_id, token) is False  # once

    assert await post_to_webhook(first, gateway_id, bot.secret_token, message_update(2)) == 401  # at once here

    async def refused() -> bool:
        return await post_to_webhook(second, gateway_id, bot.secret_token, message_update(3)) == 401

    await eventually(
        refused,
        f"the second process refuses within GATEWAY_CACHE_SECONDS ({second.settings.gateway_cache_seconds:g} s)",
    )


# --- reconnecting with the new token ---------------------------------------------------------


async def test_reconnecting_with_the_new_token_brings_the_same_gateway_back_with_its_history(app, pro_user, telegram):
    user = pro_user
    old, gateway_id = await a_bot_with_running_plugins(app, user, telegram)
    await delivered(telegram, old, message_update(1, chat_id=CHAT))
    await delivered(telegram, old, new_members_update(2, tg_user(7, "Grace"), chat_id=CHAT))
    await wait_until_processed(app)
    analytics = (await my_install(app, user, "analytics"))["id"]
    before = await analytics_counts(app, analytics, CHAT)
    assert before is not None and before["received"] == 2
    runs_before = {slug: len(await runs_of(app, user, slug)) for slug in ("welcome", "analytics")}
    secret = telegram.bot(old).secret_token
    with app.db():
        assert await app.platform.gateways.token_rejected(gateway_id, old)  # as a 401 on any call does
    assert (await my_install(app, user, "welcome"))["status"] == "WAITING_FOR_GATEWAY"

    new = new_token(telegram.bot(old).bot_id)
    bot = telegram.replace_token(old, new)  # /revoke in @BotFather: the same bot, a new token
    back = await connect(app, user, new)

    assert back == {"id": gateway_id, "isActive": True, "status": "ACTIVE", "statusReason": None}
    row = await gateway_row(app, gateway_id)
    assert (row.token, row.status, row.status_reason, row.is_active) == (new, GatewayStatus.ACTIVE, None, True)
    with app.db():
        assert await Gateway.filter(owner_id=user.id).count() == 1
    # Telegram points at the same webhook, with the same secret.
    assert (bot.webhook_url, bot.secret_token) == (webhook_url(app.settings.public_url, gateway_id), secret)
    assert [(e["from"], e["to"]) for e in await status_events(app, gateway_id)] == [
        ("ACTIVE", "TOKEN_REJECTED"),
        ("TOKEN_REJECTED", "ACTIVE"),
    ]
    connects = await audit_events(app, user, "gateway.connect")
    assert connects[-1] == {"type": "TELEGRAM_BOT", "reconnected": True}
    for slug in ("welcome", "analytics"):
        install = await my_install(app, user, slug)
        assert (install["status"], install["statusReason"]) == ("ACTIVE", None)
        assert len(await runs_of(app, user, slug)) == runs_before[slug]  # the history is still there
    assert await analytics_counts(app, analytics, CHAT) == before

    # New updates run and are counted again; a send goes out with the new token.
    await delivered(telegram, new, message_update(3, chat_id=CHAT))
    await delivered(telegram, new, new_members_update(4, tg_user(8, "Alan"), chat_id=CHAT))
    await wait_until_processed(app)
    after = await analytics_counts(app, analytics, CHAT)
    assert after is not None and after["received"] == before["received"] + 2
    assert [m["text"] for m in bot.sent_messages] == ["Welcome, Grace!", "Welcome, Alan!"]
    # A late 401 for the old token (a call made before the reconnect) changes nothing.
    with app.db():
        assert await app.platform.gateways.token_rejected(gateway_id, old) is False
    assert (await gateway_row(app, gateway_id)).status == GatewayStatus.ACTIVE


async def test_a_new_token_brings_the_gateway_back_before_any_401_was_seen(app, user, telegram):
    old = new_token()
    telegram.add_bot(old, "quiet_bot")
    gateway_id = (await connect(app, user, old))["id"]
    new = new_token(telegram.bot(old).bot_id)
    telegram.replace_token(old, new)

    back = await connect(app, user, new)

    assert back["id"] == gateway_id and back["status"] == "ACTIVE"
    assert (await gateway_row(app, gateway_id)).token == new
    assert await status_events(app, gateway_id) == []  # it was ACTIVE all along


async def test_a_reconnect_the_database_refuses_leaves_the_rejected_gateway_and_no_webhook(
    app, user, telegram, backend
):
    old = new_token()
    telegram.add_bot(old, "fragile_bot")
    gateway_id = (await connect(app, user, old))["id"]
    with app.db():
        await app.platform.gateways.token_rejected(gateway_id, old)
    new = new_token(telegram.bot(old).bot_id)
    bot = telegram.replace_token(old, new)
    telegram.calls.clear()

    async with database_refusing_inserts(app, backend, "audit_log"):
        error = await app.graphql_error(CONNECT, {"token": new}, user=user)

    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    # setWebhook went out, then was taken back: no working gateway served the bot before.
    assert telegram.methods_called() == ["getMe", "setWebhook", "deleteWebhook"]
    assert bot.webhook_url is None
    row = await gateway_row(app, gateway_id)
    assert (row.token, row.status, row.is_active) == (old, GatewayStatus.TOKEN_REJECTED, True)
    # It can still be reconnected.
    assert (await connect(app, user, new))["id"] == gateway_id


# --- another owner, and disconnecting --------------------------------------------------------


async def test_another_owner_connecting_the_bot_retires_the_rejected_gateway(app, user, telegram):
    old = new_token()
    telegram.add_bot(old, "sold_bot")
    mine = (await connect(app, user, old))["id"]
    await install_via_api(app, user, "welcome")
    with app.db():
        await app.platform.gateways.token_rejected(mine, old)
    assert (await my_install(app, user, "welcome"))["statusReason"] == REFUSED_WAITING
    new = new_token(telegram.bot(old).bot_id)
    bot = telegram.replace_token(old, new)
    other = await app.create_user("buyer@example.com")

    theirs = await connect(app, other, new)

    assert theirs["id"] != mine and theirs["status"] == "ACTIVE"
    row = await gateway_row(app, mine)
    assert (row.is_active, row.status) == (False, GatewayStatus.DISCONNECTED)
    assert row.status_reason and "another account" in row.status_reason
    assert (await shown(app, user))[mine]["status"] == "DISCONNECTED"
    [retired] = await audit_events(app, user, "gateway.deactivate")
    assert "@sold_bot was connected again, by another account" in retired["reason"]
    assert bot.webhook_url == webhook_url(app.settings.public_url, theirs["id"])
    # The first owner has no bot now: the plain reason.
    assert (await my_install(app, user, "welcome"))["statusReason"] == WAITING_FOR_A_BOT


async def test_another_owner_connecting_a_working_bot_leaves_the_first_disconnected(app, user, telegram):
    token = new_token()
    telegram.add_bot(token, "shared_bot")
    mine = (await connect(app, user, token))["id"]
    other = await app.create_user("other@example.com")
    await connect(app, other, token)
    row = await gateway_row(app, mine)
    assert (row.is_active, row.status) == (False, GatewayStatus.DISCONNECTED)


async def test_disconnecting_sets_disconnected_and_a_later_connect_is_a_new_gateway(app, user, telegram):
    token = new_token()
    telegram.add_bot(token, "parting_bot")
    gateway_id = (await connect(app, user, token))["id"]

    assert (await app.graphql(DISCONNECT, {"id": gateway_id}, user=user))["disconnectGateway"] is True

    row = await gateway_row(app, gateway_id)
    assert (row.is_active, row.status, row.status_reason) == (
        False,
        GatewayStatus.DISCONNECTED,
        "Disconnected by its owner",
    )
    gateway = (await shown(app, user))[gateway_id]
    assert (gateway["isActive"], gateway["status"]) == (False, "DISCONNECTED")
    # A disconnect is deliberate: connecting again is a new connection (see _reconnected).
    assert (await connect(app, user, token))["id"] != gateway_id


async def test_a_rejected_gateway_can_be_disconnected(app, user, telegram):
    token = new_token()
    telegram.add_bot(token, "dead_bot")
    gateway_id = (await connect(app, user, token))["id"]
    telegram.revoke(token)
    with app.db():
        await app.platform.gateways.token_rejected(gateway_id, token)

    assert (await app.graphql(DISCONNECT, {"id": gateway_id}, user=user))["disconnectGateway"] is True

    row = await gateway_row(app, gateway_id)
    assert (row.is_active, row.status) == (False, GatewayStatus.DISCONNECTED)


# --- installs' states ------------------------------------------------------------------------


async def test_an_install_made_while_the_token_is_refused_waits_with_the_reconnect_reason(app, user, telegram):
    token = new_token()
    telegram.add_bot(token, "later_bot")
    gateway_id = (await connect(app, user, token))["id"]
    with app.db():
        await app.platform.gateways.token_rejected(gateway_id, token)

    installed = await install_via_api(app, user, "welcome")

    assert (installed["status"], installed["statusReason"]) == ("WAITING_FOR_GATEWAY", REFUSED_WAITING)


async def test_a_failing_install_waits_while_the_token_is_refused_and_runs_after_the_reconnect(app, user, telegram):
    old = new_token()
    telegram.add_bot(old, "flaky_bot")
    gateway_id = (await connect(app, user, old))["id"]
    install_id = (await install_via_api(app, user, "welcome"))["id"]
    with app.db():  # its circuit breaker open (as sends refused with 401 would leave it)
        await UserPlugin.filter(id=install_id).update(
            status=InstallStatus.FAILING, status_reason="Paused after 5 failed runs in a row", consecutive_failures=5
        )
        await app.platform.gateways.token_rejected(gateway_id, old)
    waiting = await my_install(app, user, "welcome")
    assert (waiting["status"], waiting["statusReason"]) == ("WAITING_FOR_GATEWAY", REFUSED_WAITING)

    new = new_token(telegram.bot(old).bot_id)
    telegram.replace_token(old, new)
    await connect(app, user, new)

    running = await my_install(app, user, "welcome")
    assert (running["status"], running["statusReason"], running["consecutiveFailures"]) == ("ACTIVE", None, 0)
