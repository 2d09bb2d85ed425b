"""SharedStates: one producer of states per key, however many follow it."""

from __future__ import annotations

import asyncio
import contextlib
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


async def test_an_idle_follower_takes_each_state_in_the_producers_task_and_its_own_task_sleeps_on():
    shared, producer = SharedStates(), Producer()
    taken: list[tuple[str, str]] = []

    def take(state: str) -> bool:
        task = asyncio.current_task()
        taken.append((state, task.get_name() if task else ""))
        return True

    async with shared.follow("k", producer, take=take) as states:
        waiting = asyncio.ensure_future(anext(states))  # the follower's own task
        await producer.give()  # both start: the follower waits, idle
        await producer.give("a", "b")
        assert taken == [("a", "live-shared-state"), ("b", "live-shared-state")]
        assert not waiting.done()  # it was never woken: what it would have had was taken
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting


async def test_a_state_the_follower_does_not_take_wakes_its_own_task_with_it():
    shared, producer = SharedStates(), Producer()
    async with shared.follow("k", producer, take=lambda state: state != "for the task") as states:
        waiting = asyncio.ensure_future(anext(states))
        await producer.give()
        await producer.give("taken")
        assert not waiting.done()
        await producer.give("for the task")
        async with asyncio.timeout(5):
            assert await waiting == "for the task"


async def test_a_follower_busy_with_a_state_is_offered_no_other_and_then_gets_the_newest():
    shared, producer = SharedStates(), Producer()
    offered: list[str] = []

    def take(state: str) -> bool:
        offered.append(state)
        return False  # each one for the follower's task

    async with shared.follow("k", producer, take=take) as states:
        waiting = asyncio.ensure_future(anext(states))
        await producer.give()
        await producer.give("a")
        assert await waiting == "a"  # the follower's task has it, and is busy with it
        await producer.give("b", "c")
        assert offered == ["a"]  # never offered while busy: it could overtake "a"
        assert await first(states) == "c"


async def test_a_take_that_fails_leaves_the_state_to_its_follower_and_the_producer_goes_on(
    caplog: pytest.LogCaptureFixture,
):
    shared, producer = SharedStates(), Producer()

    def take(state: str) -> bool:
        raise RuntimeError("a bug in one follower")

    async with shared.follow("k", producer, take=take) as failing, shared.follow("k", producer) as other:
        waiting = asyncio.ensure_future(anext(failing))
        await producer.give()
        await producer.give("a")
        async with asyncio.timeout(5):
            assert await waiting == "a"
        assert await first(other) == "a"
        await producer.give("b")
        assert (await first(failing), await first(other)) == ("b", "b")  # the producer still runs
    assert "failed to take a state" in caplog.text
