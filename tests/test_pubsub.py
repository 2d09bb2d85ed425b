"""Pub/sub between processes: our Redis backend delivers, and survives a Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from broadcaster import Broadcast
from redis import asyncio as aioredis

from app.pubsub import RESYNC, RedisPubSubBackend, create_broadcast
from tests.support.eventually import DEADLINE_SECONDS, eventually
from tests.support.redis_server import RedisServer


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


async def next_message(subscriber: object, timeout: float = DEADLINE_SECONDS) -> str:
    event = await asyncio.wait_for(subscriber.get(), timeout)  # type: ignore[attr-defined]
    return event.message


async def subscribed(url: str, *channels: str) -> None:
    """Waits until Redis itself counts a subscriber on each channel."""
    client = aioredis.Redis.from_url(url)
    try:

        async def counted() -> bool:
            counts = dict(await client.pubsub_numsub(*channels))
            return all(counts.get(channel.encode(), 0) > 0 for channel in channels)

        await eventually(counted, f"Redis counts a subscriber on {', '.join(channels)}")
    finally:
        await client.aclose()


async def test_a_publish_after_subscribe_reaches_another_connection(redis_server: RedisServer) -> None:
    async with create_broadcast(redis_server.url) as receiving, create_broadcast(redis_server.url) as sending:
        async with receiving.subscribe("chan") as subscriber:
            # Broadcaster's own redis:// backend loses exactly this message: its listener has
            # given up by the time the subscription is in place.
            await subscribed(redis_server.url, "chan")
            await sending.publish("chan", "hello")
            assert await next_message(subscriber) == "hello"


async def test_messages_arrive_in_order_and_only_on_their_channel(redis_server: RedisServer) -> None:
    async with create_broadcast(redis_server.url) as broadcast:
        async with broadcast.subscribe("a") as sub_a, broadcast.subscribe("b") as sub_b:
            await subscribed(redis_server.url, "a", "b")
            for i in range(20):
                await broadcast.publish("a", f"a{i}")
            await broadcast.publish("b", "b0")
            assert [await next_message(sub_a) for _ in range(20)] == [f"a{i}" for i in range(20)]
            assert await next_message(sub_b) == "b0"


async def test_a_redis_restart_resubscribes_and_asks_subscribers_to_resync(redis_server: RedisServer) -> None:
    backend = RedisPubSubBackend(redis_server.url, max_backoff_seconds=0.5)
    async with Broadcast(backend=backend) as broadcast:
        async with broadcast.subscribe("live") as subscriber:
            await asyncio.wait_for(backend.connected.wait(), DEADLINE_SECONDS)
            await redis_server.stop()
            with pytest.raises(Exception):
                await broadcast.publish("live", "lost")  # Redis is down: the publisher sees it
            await redis_server.start()
            assert await next_message(subscriber) == RESYNC
            await broadcast.publish("live", "after restart")
            assert await next_message(subscriber) == "after restart"


async def test_a_subscription_made_while_redis_is_down_starts_when_it_returns(redis_server: RedisServer) -> None:
    backend = RedisPubSubBackend(redis_server.url, max_backoff_seconds=0.5)
    async with Broadcast(backend=backend) as broadcast:
        await asyncio.wait_for(backend.connected.wait(), DEADLINE_SECONDS)
        await redis_server.stop()
        await eventually(lambda: not backend.connected.is_set(), "the listener noticing that Redis is gone")
        async with broadcast.subscribe("later") as subscriber:
            await redis_server.start()
            await asyncio.wait_for(backend.connected.wait(), DEADLINE_SECONDS)
            await subscribed(redis_server.url, "later")
            await broadcast.publish("later", "hi")
            messages = {await next_message(subscriber), await next_message(subscriber)}
            assert "hi" in messages


async def test_memory_backend_for_one_process() -> None:
    async with create_broadcast("memory://") as broadcast:
        async with broadcast.subscribe("x") as subscriber:
            await broadcast.publish("x", "1")
            assert await next_message(subscriber) == "1"


def test_an_unknown_scheme_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="BROADCAST_URL"):
        create_broadcast("kafka://somewhere")
