"""Subscription slots: a bound per user in each process and, through Redis, across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from redis import asyncio as aioredis

from app.live_slots import RedisSlots, SubscriptionSlots
from tests.support.eventually import eventually
from tests.support.redis_server import RedisServer, shared_redis_url


@pytest.fixture
async def redis_url() -> str:
    return await shared_redis_url()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def processes(redis_url: str) -> AsyncIterator[list[SubscriptionSlots]]:
    """The slots of two processes sharing one Redis, with short leases."""
    made = [SubscriptionSlots(2, RedisSlots(redis_url, lease_seconds=1)) for _ in range(2)]
    yield made
    for slots in made:
        await slots.close()


async def live_members(url: str, user_id: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        seconds, microseconds = await client.time()
        now_ms = seconds * 1000 + microseconds // 1000
        return await client.zcount(f"plugboard:subscriptions:{user_id}", now_ms, "+inf")
    finally:
        await client.aclose()


async def test_a_user_holds_at_most_the_limit_and_a_slot_given_back_is_free_again() -> None:
    slots = SubscriptionSlots(2)
    first, second = await slots.acquire("u1"), await slots.acquire("u1")
    assert first is not None and second is not None
    assert await slots.acquire("u1") is None
    assert await slots.acquire("u2") is not None  # another user's bound is their own
    slots.release(first)
    slots.release(first)  # twice changes nothing
    assert slots.held("u1") == 1
    assert await slots.acquire("u1") is not None
    assert await slots.acquire("u1") is None


async def test_the_bound_holds_across_processes(processes: list[SubscriptionSlots], redis_url: str) -> None:
    one, other = processes
    taken = await one.acquire("across")
    assert taken is not None and await other.acquire("across") is not None
    assert await other.acquire("across") is None
    assert await one.acquire("across") is None
    one.release(taken)
    await eventually(lambda: _has_room(redis_url, "across", 2), "the given-back slot free in Redis")
    assert await other.acquire("across") is not None


async def _has_room(url: str, user_id: str, limit: int) -> bool:
    return await live_members(url, user_id) < limit


async def test_the_slots_of_a_process_that_died_are_free_once_their_lease_ends(
    processes: list[SubscriptionSlots], redis_url: str
) -> None:
    dead, alive = processes
    assert await dead.acquire("orphan") is not None and await dead.acquire("orphan") is not None
    assert await alive.acquire("orphan") is None
    # `dead` never renews nor gives back: its members end with their 1 s lease.
    await eventually(lambda: _has_room(redis_url, "orphan", 2), "the dead process's leases ended")
    assert await alive.acquire("orphan") is not None


async def test_a_live_process_renews_the_leases_of_its_slots(
    processes: list[SubscriptionSlots], redis_url: str
) -> None:
    holder, _ = processes
    assert await holder.acquire("kept") is not None
    first_lease_end = await lease_end(redis_url, "kept")
    renewing = asyncio.create_task(holder.renew_forever())
    try:
        await eventually(lambda: _lease_after(redis_url, "kept", first_lease_end), "the lease renewed")
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)


async def lease_end(url: str, user_id: str) -> float:
    client = aioredis.Redis.from_url(url)
    try:
        entries = await client.zrange(f"plugboard:subscriptions:{user_id}", 0, -1, withscores=True)
        ((_, score),) = cast("list[tuple[bytes, float]]", entries)
        return score
    finally:
        await client.aclose()


async def _lease_after(url: str, user_id: str, moment: float) -> bool:
    return await lease_end(url, user_id) > moment


async def test_while_redis_is_down_each_process_keeps_its_own_bound_and_restores_the_set_after(
    private_redis: RedisServer,
) -> None:
    slots = SubscriptionSlots(2, RedisSlots(private_redis.url, lease_seconds=5))
    try:
        await private_redis.stop()
        first, second = await slots.acquire("outage"), await slots.acquire("outage")
        assert first is not None and second is not None
        assert await slots.acquire("outage") is None
        await private_redis.start()
        assert slots.shared is not None
        await slots.shared.renew({"outage": [first.id, second.id]})  # what renew_forever does next
        assert await live_members(private_redis.url, "outage") == 2
        other = SubscriptionSlots(2, RedisSlots(private_redis.url, lease_seconds=5))
        try:
            assert await other.acquire("outage") is None
        finally:
            await other.close()
    finally:
        await slots.close()


async def test_a_slot_whose_acquisition_is_cancelled_is_not_held(private_redis: RedisServer) -> None:
    slots = SubscriptionSlots(1, RedisSlots(private_redis.url))
    try:
        private_redis.freeze()  # Redis hangs: the acquisition waits for its answer
        waiting = asyncio.create_task(slots.acquire("cancelled"))
        await eventually(lambda: slots.held("cancelled") == 1, "the slot counted while Redis is asked")
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert slots.held("cancelled") == 0
    finally:
        private_redis.thaw()
        await slots.close()
