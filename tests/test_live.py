"""SharedStates: one producer of states per key, however many follow it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from app.live import SharedStates


class Producer:
    """States given by the test one at a time; counts its starts and knows when it was closed."""

    def __init__(self) -> None:
        self.starts = 0
        self.closed = 0
        self.queue: asyncio.Queue[str | Exception | None] = asyncio.Queue()

    async def __call__(self) -> AsyncGenerator[str, None]:
        self.starts += 1
        try:
            while (item := await self.queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1

    async def give(self, *items: str | Exception | None) -> None:
        for item in items:
            self.queue.put_nowait(item)
        for _ in range(5):  # let the producer task take them
            await asyncio.sleep(0)


async def first(states: AsyncIterator[str]) -> str:
    async with asyncio.timeout(5):
        return await anext(states)


async def rest(states: AsyncIterator[str]) -> list[str]:
    async with asyncio.timeout(5):
        return [state async for state in states]


async def test_followers_of_one_key_share_one_producer_and_each_gets_every_state():
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer) as one, shared.follow("k", producer) as two:
        await producer.give("a")
        assert (await first(one), await first(two)) == ("a", "a")
        await producer.give("b")
        assert (await first(one), await first(two)) == ("b", "b")
    assert producer.starts == 1


async def test_keys_have_their_own_producers():
    shared, a, b = SharedStates(), Producer(), Producer()
    async with shared.follow("a", a) as one, shared.follow("b", b) as two:
        await a.give("from a")
        await b.give("from b")
        assert (await first(one), await first(two)) == ("from a", "from b")
        assert len(shared) == 2


async def test_a_late_follower_starts_with_the_latest_state():
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer) as early:
        await producer.give("old", "new")
        async with shared.follow("k", producer) as late:
            assert await first(late) == "new"
            await producer.give("newer")
            assert await first(late) == "newer"
        assert await first(early) == "newer"  # a slow follower skips to the newest state


async def test_the_producer_is_closed_when_its_last_follower_leaves():
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer):
        async with shared.follow("k", producer) as second:
            await producer.give("a")
            assert await first(second) == "a"
        assert producer.closed == 0
    assert producer.closed == 1
    assert len(shared) == 0
    async with shared.follow("k", producer) as again:  # the next follower starts it anew
        await producer.give("b")
        assert await first(again) == "b"
    assert producer.starts == 2


async def test_followers_end_when_the_producer_ends_and_the_next_follower_starts_it_anew():
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer) as one, shared.follow("k", producer) as two:
        await producer.give("last", None)
        assert await rest(one) == ["last"]
        assert await rest(two) == ["last"]
        assert len(shared) == 0
        async with shared.follow("k", producer) as three:
            await producer.give("fresh")
            assert await first(three) == "fresh"
    assert producer.starts == 2


async def test_a_failing_producer_ends_its_followers_and_is_logged(caplog: pytest.LogCaptureFixture):
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer) as one:
        await producer.give("a", RuntimeError("boom"))
        assert await rest(one) == ["a"]
    assert "shared live stream failed" in caplog.text


async def test_the_producer_knows_the_tags_of_its_followers_while_they_follow():
    shared, producer = SharedStates(), Producer()
    assert shared.tags("k") == []
    async with shared.follow("k", producer, tag="token-1"), shared.follow("k", producer, tag="token-2"):
        async with shared.follow("k", producer, tag="token-1"), shared.follow("k", producer):
            assert sorted(shared.tags("k")) == ["token-1", "token-2"]  # each once, however many said it
        assert sorted(shared.tags("k")) == ["token-1", "token-2"]  # one follower of token-1 is left
        async with shared.follow("other", Producer(), tag="token-3"):
            assert sorted(shared.tags("k")) == ["token-1", "token-2"]
        assert shared.tags("other") == []
    assert shared.tags("k") == []
