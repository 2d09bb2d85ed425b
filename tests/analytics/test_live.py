"""Subscription.analyticsUpdated: the current figures first, then one event after each change."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from websockets.asyncio.client import connect

from app.graphql.analytics import MIN_PUSH_INTERVAL_SECONDS
from tests.support.eventually import eventually
from tests.support.queries import counting_queries
from tests.support.redis_server import RedisServer
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import PROTOCOL, Subscription, subscribe, ws_url
from tests.support.telegram_updates import message_update

LIVE = "subscription($chatId: ID) { analyticsUpdated(chatId: $chatId) { totalMessages messagesToday uniqueUsers } }"


CREATE_TOKEN = "mutation($name: String!) { createApiToken(name: $name) { token apiToken { id } } }"
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) }"


def total(data):
    return data["analyticsUpdated"]["totalMessages"]


async def analytics_owner(app, telegram, email="live@example.com"):
    owner = await app.create_user(email, "pro")
    bot = await connect_bot(app, owner, telegram, username=email.split("@")[0] + "_bot")
    await install(app, owner, "analytics")
    return owner, bot


async def test_the_first_event_is_now_and_each_change_follows(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        assert (await live.next())["analyticsUpdated"]["totalMessages"] == 0
        assert (await deliver(app, bot, message_update(1, chat_id=-1, sender_id=5))).status_code == 200
        data = await live.next()
        assert data["analyticsUpdated"] == {"totalMessages": 1, "messagesToday": 1, "uniqueUsers": 1}


async def test_a_burst_is_coalesced_and_its_last_state_arrives(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        await live.next()
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = await asyncio.gather(*(deliver(app, bot, message_update(n, chat_id=-1)) for n in range(1, 101)))
        assert {s.status_code for s in statuses} == {200}
        data, pushes = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 100)
        span = loop.time() - started
    # Many changes, few pushes: at most one per interval, however long the burst took to process
    # (the server, in this same loop, pushed them all within `span`); the last state always arrives.
    assert pushes <= 1 + span / MIN_PUSH_INTERVAL_SECONDS, (pushes, span)


async def test_subscribers_only_ever_see_their_own_numbers(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    other, other_bot = await analytics_owner(app, telegram, "other@example.com")
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        await live.next()
        for n in range(1, 6):
            await deliver(app, other_bot, message_update(n, chat_id=-9))
        await wait_until_processed(app)
        await deliver(app, bot, message_update(1, chat_id=-1))
        data = await live.next()
        assert data["analyticsUpdated"]["totalMessages"] == 1


async def test_one_chat_subscription(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, {"chatId": "-2"}, token=owner.token) as live:
        await live.next()
        await deliver(app, bot, message_update(1, chat_id=-1))
        await deliver(app, bot, message_update(2, chat_id=-2))
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 1)
        assert data["analyticsUpdated"]["totalMessages"] == 1


async def test_without_a_token_there_is_no_data(app):
    async with subscribe(app.url, LIVE) as live:
        message = await live.message()
    assert message["type"] in ("error", "next")
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in message["payload"] or message["payload"]["data"] is None


async def test_a_redis_restart_during_a_subscription_loses_nothing_in_the_end(make_app, telegram, tmp_path: Path):
    redis = RedisServer(tmp_path)
    await redis.start()
    try:
        app = await make_app(broadcast_url=redis.url)
        owner, bot = await analytics_owner(app, telegram)
        async with subscribe(app.url, LIVE, token=owner.token) as live:
            await live.next()
            await redis.stop()
            # Redis is down: webhooks and processing go on, only the push waits.
            assert (await deliver(app, bot, message_update(1, chat_id=-1))).status_code == 200
            await wait_until_processed(app)
            assert (await app.graphql("{ analytics { totalMessages } }", user=owner))["analytics"]["totalMessages"] == 1
            await redis.start()
            data, _ = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 1)
            await deliver(app, bot, message_update(2, chat_id=-1))
            data, _ = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 2)
    finally:
        await redis.stop()


@contextlib.asynccontextmanager
async def subscribers(app, count, token, query=LIVE):
    """`count` sockets subscribed with the same token and query, each past its first event."""
    async with contextlib.AsyncExitStack() as stack:
        lives: list[Subscription] = [
            await stack.enter_async_context(subscribe(app.url, query, token=token)) for _ in range(count)
        ]
        for live in lives:
            await live.next()
        yield lives


async def analytics_reads_for_one_change(app, bot, lives, update_id):
    """The SELECTs on analytics tables from a webhook until every subscriber has shown its message."""
    with counting_queries() as statements:
        await deliver(app, bot, message_update(update_id, chat_id=-1))
        for live in lives:
            await live.until(lambda d: total(d) == update_id)
    return sum(1 for s in statements if "SELECT" in s.upper() and "analytics_" in s)


async def test_sockets_of_one_token_share_each_changes_reads(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    await deliver(app, bot, message_update(1, chat_id=-1))  # the chat's and the sender's first message: more writes
    await wait_until_processed(app)
    async with subscribers(app, 1, owner.token) as one:
        alone = await analytics_reads_for_one_change(app, bot, one, 2)
    async with subscribers(app, 5, owner.token) as five:
        shared = await analytics_reads_for_one_change(app, bot, five, 3)
    assert alone > 0
    assert shared == alone


async def test_a_socket_joining_a_shared_stream_starts_with_the_current_figures(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, token=owner.token) as early:
        assert total(await early.next()) == 0
        await deliver(app, bot, message_update(1, chat_id=-1))
        await early.until(lambda d: total(d) == 1)
        async with subscribe(app.url, LIVE, token=owner.token) as late:
            assert total(await late.next()) == 1


async def test_one_socket_leaving_a_shared_stream_leaves_the_others_theirs(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, token=owner.token) as staying:
        await staying.next()
        async with subscribe(app.url, LIVE, token=owner.token) as leaving:
            await leaving.next()
        await deliver(app, bot, message_update(1, chat_id=-1))
        await staying.until(lambda d: total(d) == 1)
    # The server sees the close a moment later; the last one out stops the shared stream.
    await eventually(lambda: len(app.platform.live.shared) == 0, "the shared stream stopped")


async def test_sockets_with_other_tokens_or_arguments_get_their_own_figures(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    created = (await app.graphql(CREATE_TOKEN, {"name": "tablet"}, user=owner))["createApiToken"]
    await deliver(app, bot, message_update(1, chat_id=-1))
    await deliver(app, bot, message_update(2, chat_id=-2))
    await wait_until_processed(app)
    async with (
        subscribe(app.url, LIVE, token=owner.token) as everything,
        subscribe(app.url, LIVE, token=created["token"]) as other_token,
        subscribe(app.url, LIVE, {"chatId": "-2"}, token=owner.token) as one_chat,
    ):
        assert [total(await s.next()) for s in (everything, other_token, one_chat)] == [2, 2, 1]
        await deliver(app, bot, message_update(3, chat_id=-1))
        await everything.until(lambda d: total(d) == 3)
        await other_token.until(lambda d: total(d) == 3)
        await deliver(app, bot, message_update(4, chat_id=-2))
        await one_chat.until(lambda d: total(d) == 2)


async def test_a_revoked_token_closes_its_streaming_socket_and_the_one_about_to_join(app, telegram):
    """Both close at once with 4403 Forbidden, without waiting for a change of the figures."""
    owner, _ = await analytics_owner(app, telegram)
    created = (await app.graphql(CREATE_TOKEN, {"name": "old phone"}, user=owner))["createApiToken"]
    async with subscribe(app.url, LIVE, token=created["token"]) as live:
        await live.next()
        async with connect(ws_url(app.url), subprotocols=[PROTOCOL]) as joining:  # signed in, not yet subscribed
            await joining.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {created['token']}"}})
            )
            assert json.loads(await joining.recv())["type"] == "connection_ack"
            await app.graphql(REVOKE_TOKEN, {"id": created["apiToken"]["id"]}, user=owner)
            await joining.wait_closed()
        await live.ws.wait_closed()
    assert (joining.close_code, joining.close_reason) == (4403, "Forbidden")
    assert (live.ws.close_code, live.ws.close_reason) == (4403, "Forbidden")


async def test_a_bad_document_is_each_sockets_own_error(app, telegram):
    owner, _ = await analytics_owner(app, telegram)
    bad = "subscription { analyticsUpdated { totalMessages noSuchField } }"
    async with subscribe(app.url, bad, token=owner.token) as one, subscribe(app.url, bad, token=owner.token) as two:
        for live in (one, two):
            message = await live.message()
            assert message["type"] == "error", message
            assert "noSuchField" in message["payload"][0]["message"]
