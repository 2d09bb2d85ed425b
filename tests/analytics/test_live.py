"""Subscription.analyticsUpdated: the current figures first, then one event after each change."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.redis_server import RedisServer
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import message_update

LIVE = "subscription($chatId: ID) { analyticsUpdated(chatId: $chatId) { totalMessages messagesToday uniqueUsers } }"


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
        data = await live.next(timeout=5)
        assert data["analyticsUpdated"] == {"totalMessages": 1, "messagesToday": 1, "uniqueUsers": 1}


async def test_a_burst_is_coalesced_and_its_last_state_arrives(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        await live.next()
        statuses = await asyncio.gather(*(deliver(app, bot, message_update(n, chat_id=-1)) for n in range(1, 101)))
        assert {s.status_code for s in statuses} == {200}
        data, pushes = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 100)
        assert pushes < 50  # many changes, few pushes


async def test_subscribers_only_ever_see_their_own_numbers(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    other, other_bot = await analytics_owner(app, telegram, "other@example.com")
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        await live.next()
        for n in range(1, 6):
            await deliver(app, other_bot, message_update(n, chat_id=-9))
        await wait_until_processed(app)
        await deliver(app, bot, message_update(1, chat_id=-1))
        data = await live.next(timeout=5)
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
            data, _ = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 1, timeout=20)
            await deliver(app, bot, message_update(2, chat_id=-1))
            data, _ = await live.until(lambda d: d["analyticsUpdated"]["totalMessages"] == 2)
    finally:
        await redis.stop()
