"""app/batched_loads.py: loads asked for together are one call, and nothing is served from a call
that started before it was asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.batched_loads import BatchedLoads


class Loads:
    """A load_many that records its calls; `hold` keeps a call from answering until set."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.version = 0  # what the "database" holds: each answer is the version when it was read
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        self.calls.append(list(keys))
        read = self.version
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        return {key: (key, read) for key in keys}


async def test_keys_asked_for_together_are_loaded_in_one_call_each_once():
    loads = Loads()
    batched = BatchedLoads(loads)
    answers = await asyncio.gather(*(batched.load(key) for key in ["a", "b", "a", "c", "b"]))
    assert [answer[0] for answer in answers] == ["a", "b", "a", "c", "b"]
    assert loads.calls == [["a", "b", "c"]]
    assert batched.batches == 1


async def test_a_key_asked_for_during_a_load_is_read_again_after_it():
    """A caller woken by a change made after a load started gets a read made after it asked."""
    loads = Loads()
    loads.hold = asyncio.Event()
    batched = BatchedLoads(loads)
    early = asyncio.ensure_future(batched.load("a"))
    await loads.started.wait()  # the first load is under way
    loads.version = 1  # a change, then a caller that must see it
    late = asyncio.ensure_future(batched.load("a"))
    loads.hold.set()
    assert await early == ("a", 0)
    assert await late == ("a", 1)
    assert loads.calls == [["a"], ["a"]]


async def test_a_failed_load_fails_each_of_its_callers_and_the_next_load_runs():
    calls = 0

    async def failing(keys: Sequence[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return dict.fromkeys(keys, calls)

    batched = BatchedLoads(failing)
    results = await asyncio.gather(batched.load("a"), batched.load("b"), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await batched.load("a") == 2


async def test_a_key_the_load_does_not_answer_is_a_key_error():
    async def answers_none(keys: Sequence[str]) -> dict[str, int]:
        return {}

    with pytest.raises(KeyError):
        await BatchedLoads(answers_none).load("a")


async def test_a_caller_that_gives_up_leaves_the_load_to_the_others():
    loads = Loads()
    loads.hold = asyncio.Event()
    batched = BatchedLoads(loads)
    leaving = asyncio.ensure_future(batched.load("a"))
    staying = asyncio.ensure_future(batched.load("a"))
    await loads.started.wait()
    leaving.cancel()
    loads.hold.set()
    assert await staying == ("a", 0)
    assert leaving.cancelled()


async def test_batches_are_bounded():
    loads = Loads()
    batched = BatchedLoads(loads, max_batch=2)
    await asyncio.gather(*(batched.load(key) for key in "abcde"))
    assert loads.calls == [["a", "b"], ["c", "d"], ["e"]]
