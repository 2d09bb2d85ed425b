"""Connecting a bot under races and faults: a bot has at most one active gateway, Telegram points
at it, and a connect that fails leaves the working webhook as it was."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from app.audit.models import AuditLog
from app.gateways.models import Gateway
from app.gateways.service import webhook_url
from tests.fakes.telegram import FakeBot
from tests.support.live import LiveApp

CONNECT = "mutation($token: String!) { connectTelegramBot(token: $token) { id isActive } }"
DISCONNECT = "mutation($id: ID!) { disconnectGateway(gatewayId: $id) }"
MY_GATEWAYS = "{ myGateways { id isActive } }"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TRIALS = 30


@contextlib.asynccontextmanager
async def database_refusing_inserts(app: LiveApp, backend: str, table: str) -> AsyncIterator[None]:
    """The database itself refuses every new row of `table` (a trigger), until the block ends."""
    with app.db() as ctx:
        conn = ctx.db()
        if backend == "postgres":
            await conn.execute_script(
                "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;"
                f'CREATE TRIGGER refuse_row BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION refuse_row();'
            )
        else:
            await conn.execute_script(
                f"CREATE TRIGGER refuse_row BEFORE INSERT ON \"{table}\" BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            )
    try:
        yield
    finally:
        with app.db() as ctx:
            conn = ctx.db()
            if backend == "postgres":
                await conn.execute_script(f'DROP TRIGGER refuse_row ON "{table}"; DROP FUNCTION refuse_row();')
            else:
                await conn.execute_script("DROP TRIGGER refuse_row")


async def gateways_of_bot(app: LiveApp, bot: FakeBot) -> list[Gateway]:
    with app.db():
        return await Gateway.filter(bot_id=bot.bot_id).order_by("created_at")


async def assert_telegram_points_at_the_active_gateway(app: LiveApp, bot: FakeBot) -> Gateway | None:
    gateways = await gateways_of_bot(app, bot)
    active = [g for g in gateways if g.is_active]
    assert len(active) <= 1, f"{len(active)} active gateways for one bot"
    if not active:
        assert bot.webhook_url is None
        return None
    assert bot.webhook_url == webhook_url(app.settings.public_url, active[0].id)
    assert bot.secret_token == active[0].secret
    return active[0]


# -- a connect that fails after setWebhook ---------------------------------------------------


@pytest.mark.parametrize("table", ["gateways", "audit_log"])
async def test_a_reconnect_the_database_refuses_leaves_the_working_webhook(app, user, telegram, backend, table):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    working = (await app.graphql(CONNECT, {"token": TOKEN}, user=user))["connectTelegramBot"]
    secret = bot.secret_token
    telegram.calls.clear()

    async with database_refusing_inserts(app, backend, table):
        error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)

    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    # setWebhook to the new gateway went out, then Telegram was pointed back at the working one.
    assert telegram.methods_called() == ["getMe", "setWebhook", "setWebhook"]
    assert bot.webhook_url == webhook_url(app.settings.public_url, working["id"])
    assert bot.secret_token == secret
    assert (await app.graphql(MY_GATEWAYS, user=user))["myGateways"] == [{"id": working["id"], "isActive": True}]


async def test_a_first_connect_the_database_refuses_deletes_the_webhook_it_set(app, user, telegram, backend):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    async with database_refusing_inserts(app, backend, "gateways"):
        error = await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert telegram.methods_called() == ["getMe", "setWebhook", "deleteWebhook"]
    assert bot.webhook_url is None
    assert await gateways_of_bot(app, bot) == []


async def test_another_owners_gateway_for_the_bot_is_restored_too(app, user, telegram, backend):
    bot = telegram.add_bot(TOKEN, "plugboard_demo_bot")
    other = await app.create_user("other@example.com")
    theirs = (await app.graphql(CONNECT, {"token": TOKEN}, user=other))["connectTelegramBot"]
    async with database_refusing_inserts(app, backend, "gateways"):
        await app.graphql_error(CONNECT, {"token": TOKEN}, user=user)
    active = await assert_telegram_points_at_the_active_gateway(app, bot)
    assert active is not None and active.id == theirs["id"]


# -- the same bot connected by two users at once ---------------------------------------------


async def test_two_users_connecting_one_bot_at_once_leave_one_active_gateway_that_telegram_points_at(
    make_app, telegram
):
    # Two apps on one database: as two server processes, each with its own connections.
    first, second = await make_app(), await make_app()
    alice = await first.create_user("alice@example.com")
    bob = await first.create_user("bob@example.com")
    bot = telegram.add_bot(TOKEN, "shared_bot")
    telegram.delay("setWebhook", 0.02)  # widens the window between setWebhook and the commit

    for _ in range(TRIALS):
        results = await asyncio.gather(
            first.graphql(CONNECT, {"token": TOKEN}, user=alice),
            second.graphql(CONNECT, {"token": TOKEN}, user=bob),
            second.graphql(CONNECT, {"token": TOKEN}, user=alice),
        )
        active = await assert_telegram_points_at_the_active_gateway(first, bot)
        assert active is not None
        assert active.id in {r["connectTelegramBot"]["id"] for r in results}

    gateways = await gateways_of_bot(first, bot)
    assert len(gateways) == 3 * TRIALS
    with first.db():
        events = await AuditLog.filter(action="gateway.deactivate").values("actor_id", "target_id", "metadata")
    # Every gateway that lost the bot is told so, once, in its own owner's audit log.
    retired = {(g.owner_id, g.id) for g in gateways if not g.is_active}
    assert sorted((e["actor_id"], e["target_id"]) for e in events) == sorted(retired)
    assert len(retired) == 3 * TRIALS - 1
    assert all("shared_bot" in e["metadata"]["reason"] for e in events)
    bobs_log = (await first.graphql("{ auditLog(limit: 500) { action targetId } }", user=bob))["auditLog"]
    bobs_retired = {g.id for g in gateways if g.owner_id == bob.id and not g.is_active}
    assert {e["targetId"] for e in bobs_log if e["action"] == "gateway.deactivate"} == bobs_retired


async def test_a_disconnect_racing_a_connect_of_the_same_bot_leaves_telegram_and_the_database_agreeing(
    make_app, telegram
):
    first, second = await make_app(), await make_app()
    alice = await first.create_user("alice@example.com")
    bob = await first.create_user("bob@example.com")
    bot = telegram.add_bot(TOKEN, "shared_bot")
    telegram.delay("setWebhook", 0.02)
    telegram.delay("deleteWebhook", 0.02)

    outcomes = set()
    for _ in range(TRIALS):
        mine = (await first.graphql(CONNECT, {"token": TOKEN}, user=alice))["connectTelegramBot"]
        disconnected, connected = await asyncio.gather(
            first.graphql_response(DISCONNECT, {"id": mine["id"]}, user=alice),
            second.graphql_response(CONNECT, {"token": TOKEN}, user=bob),
        )
        assert "errors" not in connected
        if disconnected.get("errors"):
            [error] = disconnected["errors"]
            assert error["extensions"]["code"] == "NOT_FOUND"  # the connect retired it first
            outcomes.add("connect first")
        else:
            assert disconnected["data"]["disconnectGateway"] is True
            outcomes.add("disconnect first")
        active = await assert_telegram_points_at_the_active_gateway(first, bot)
        assert active is not None and active.id == connected["data"]["connectTelegramBot"]["id"]
    assert outcomes  # at least one ordering was seen; each was checked
