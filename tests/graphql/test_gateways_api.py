"""Connecting a Telegram bot over GraphQL: Telegram is asked, and nothing is saved unless it agrees."""

from __future__ import annotations

import json
import logging
import re

import pytest

from app.gateways.models import Gateway
from tests.fakes.telegram import unreachable_url

CONNECT = "mutation($token: String!, $name: String) { connectTelegramBot(token: $token, name: $name) { id type name botUsername webhookUrl isActive createdAt } }"
DISCONNECT = "mutation($id: ID!) { disconnectGateway(gatewayId: $id) }"
MY_GATEWAYS = "{ myGateways { id type name botUsername webhookUrl isActive } }"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


async def gateways_saved(app) -> int:
    with app.db():
        return await Gateway.all().count()


async def test_connecting_a_bot_checks_the_token_and_sets_the_webhook(app, user, telegram):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    response = await app.graphql_response(CONNECT, {"token": TOKEN, "name": "Demo"}, user=user)
    gateway = response["data"]["connectTelegramBot"]

    assert gateway["type"] == "TELEGRAM_BOT"
    assert gateway["name"] == "Demo"
    assert gateway["botUsername"] == "plugboard_demo_bot"
    assert gateway["isActive"] is True
    assert gateway["webhookUrl"] == f"https://plugboard.example/webhooks/telegram/{gateway['id']}"
    assert telegram.methods_called() == ["getMe", "setWebhook"]
    assert bot.webhook_url == gateway["webhookUrl"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", bot.secret_token or "")
    assert bot.allowed_updates == ["message"]  # what a user with no installs needs (the minimum Telegram allows)
    # Neither the token nor the secret ever leaves the server.
    assert TOKEN not in json.dumps(response)
    assert bot.secret_token not in json.dumps(response)


async def test_the_name_defaults_to_the_bot_username(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    gateway = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    assert gateway["name"] == "@plugboard_demo_bot"


@pytest.mark.parametrize("token", ["not-a-token", "123:short", ""])
async def test_a_malformed_token_is_refused_without_calling_telegram(app, user, telegram, token):
    error = await app.graphql_error(CONNECT, {"token": token}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert telegram.calls == []
    assert await gateways_saved(app) == 0


async def test_a_token_telegram_rejects_is_bad_user_input_and_nothing_is_saved(app, user, telegram):
    error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/token", "message": "rejected by Telegram"}]
    assert telegram.methods_called() == ["getMe"]
    assert await gateways_saved(app) == 0
    assert TOKEN not in json.dumps(error)


async def test_an_unreachable_bot_api_is_gateway_unreachable_and_nothing_is_saved(make_app):
    live = await make_app(telegram_api_url=unreachable_url())
    user = await live.create_user("offline@example.com")
    error = await live.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "GATEWAY_UNREACHABLE"
    assert await gateways_saved(live) == 0


async def test_a_failing_set_webhook_saves_nothing(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    telegram.fail_next("setWebhook", status=502, description="Bad Gateway")
    error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "GATEWAY_UNREACHABLE"
    assert await gateways_saved(app) == 0


async def test_my_gateways_lists_only_the_callers(app, user, telegram):
    telegram.add_bot(TOKEN, "mine_bot")
    other = await app.create_user("other@example.com")
    telegram.add_bot("987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "theirs_bot")
    await app.graphql(CONNECT, {"token": TOKEN}, user=user)
    await app.graphql(CONNECT, {"token": "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}, user=other)
    mine = (await app.graphql(MY_GATEWAYS, user=user))["myGateways"]
    assert [g["botUsername"] for g in mine] == ["mine_bot"]


async def test_disconnecting_deletes_the_webhook_and_deactivates(app, user, telegram):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    gateway = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    assert (await app.graphql(DISCONNECT, {"id": gateway["id"]}, user=user))["disconnectGateway"] is True
    assert telegram.methods_called()[-1] == "deleteWebhook"
    assert bot.webhook_url is None
    assert (await app.graphql(MY_GATEWAYS, user=user))["myGateways"][0]["isActive"] is False
    again = await app.graphql_error(DISCONNECT, {"id": gateway["id"]}, user=user)
    assert again["extensions"]["code"] == "NOT_FOUND"


async def test_someone_elses_gateway_is_not_found(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    gateway = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    other = await app.create_user("other@example.com")
    error = await app.graphql_error(DISCONNECT, {"id": gateway["id"]}, user=other)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await app.graphql(MY_GATEWAYS, user=user))["myGateways"][0]["isActive"] is True


async def test_reconnecting_a_bot_retires_its_older_gateway(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    first = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    second = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    states = {g["id"]: g["isActive"] for g in (await app.graphql(MY_GATEWAYS, user=user))["myGateways"]}
    assert states == {first["id"]: False, second["id"]: True}


async def test_connect_and_disconnect_are_audited(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    gateway = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    await app.graphql(DISCONNECT, {"id": gateway["id"]}, user=user)
    events = (await app.graphql("{ auditLog { action targetType targetId } }", user=user))["auditLog"]
    assert events == [
        {"action": "gateway.disconnect", "targetType": "gateway", "targetId": gateway["id"]},
        {"action": "gateway.connect", "targetType": "gateway", "targetId": gateway["id"]},
    ]


async def test_the_token_and_secret_appear_in_no_response_and_no_log(app, user, telegram, caplog):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    caplog.set_level(logging.INFO)  # what `serve` logs
    for logger in ("app", "aiogram", "strawberry", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=logger)
    bodies = [json.dumps(await app.graphql_response(CONNECT, {"token": TOKEN}, user=user))]
    secret = bot.secret_token
    gateway_id = json.loads(bodies[0])["data"]["connectTelegramBot"]["id"]
    bodies.append(json.dumps(await app.graphql_response(MY_GATEWAYS, user=user)))
    bodies.append(json.dumps(await app.graphql_response("{ auditLog { metadata } }", user=user)))
    telegram.fail_next("deleteWebhook", status=502)  # its failure is logged
    bodies.append(json.dumps(await app.graphql_response(DISCONNECT, {"id": gateway_id}, user=user)))
    bodies.append(json.dumps(await app.graphql_response(CONNECT, {"token": TOKEN.replace("1", "2")}, user=user)))

    assert secret and any("deleteWebhook failed" in r.getMessage() for r in caplog.records)
    for text in [*bodies, caplog.text]:
        assert TOKEN not in text
        assert TOKEN.replace("1", "2") not in text
        assert secret not in text


# -- Telegram's refusals and an unreachable API ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known"),
        (401, "Unauthorized"),
        (403, "Forbidden: bot was blocked"),
    ],
)
async def test_telegram_refusing_set_webhook_is_bad_user_input_with_its_words(app, user, telegram, status, description):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    telegram.fail_next("setWebhook", status=status, description=description)
    error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert description in error["message"]
    assert TOKEN not in json.dumps(error)
    assert await gateways_saved(app) == 0
    assert bot.webhook_url is None


async def test_telegram_refusing_get_me_is_bad_user_input_with_its_words(app, user, telegram):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    telegram.fail_next("getMe", status=400, description="Bad Request: invalid bot")
    error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Bad Request: invalid bot" in error["message"]
    assert telegram.methods_called() == ["getMe"]
    assert await gateways_saved(app) == 0


@pytest.mark.parametrize(
    "public_url", ["http://127.0.0.1:8000", "http://plugboard.example", "https://plugboard.example:8000"]
)
async def test_a_public_url_telegram_refuses_tells_the_user_to_set_public_url(make_app, telegram, public_url):
    live = await make_app(public_url=public_url, telegram_delivery="webhook")  # auto would choose polling
    user = await live.create_user("newcomer@example.com")
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    error = await live.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "bad webhook" in error["message"]
    assert "Set PUBLIC_URL to this server's public HTTPS address" in error["message"]
    assert bot.webhook_url is None
    assert await gateways_saved(live) == 0


async def test_an_unreachable_bot_api_is_named_with_the_cause_in_words(make_app):
    address = unreachable_url()
    live = await make_app(telegram_api_url=address)
    user = await live.create_user("offline@example.com")
    error = await live.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "GATEWAY_UNREACHABLE"
    assert error["message"] == f"The Telegram Bot API at {address} could not be reached: connection refused"
    assert TOKEN.split(":")[1] not in json.dumps(error)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("bad\u0000name", "contains a NUL character"), ("bad\ud800name", "contains an unpaired surrogate")],
)
async def test_a_name_no_database_can_store_is_refused_before_telegram_is_asked(app, user, telegram, name, problem):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    body = json.dumps({"query": CONNECT, "variables": {"token": TOKEN, "name": name}})  # \ud800 escaped, as JSON allows
    response = await app.http.post("/graphql", content=body, headers={**user.auth, "Content-Type": "application/json"})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/name", "message": problem}]
    assert telegram.calls == []
    assert await gateways_saved(app) == 0
