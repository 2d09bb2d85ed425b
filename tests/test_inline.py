"""Coroutines run in the caller's task until they suspend (app/inline.py)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from app import inline

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="unset")


async def answer(value: int) -> int:
    return value


async def suspend() -> None:
    """Suspends once: until the loop's next turn."""
    ready = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(ready.set_result, None)
    await ready


async def test_a_coroutine_that_never_suspends_is_done_in_one_step():
    started = inline.start(answer(7))
    assert (started.done, started.result) == (True, 7)


async def test_one_that_suspends_goes_on_in_the_task_it_started_in():
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[object] | None] = []

    async def suspends() -> str:
        tasks.append(asyncio.current_task())
        ready = loop.create_future()
        loop.call_soon(ready.set_result, "later")
        value = await ready
        tasks.append(asyncio.current_task())
        return value

    started = inline.start(suspends())
    assert not started.done
    assert await started.rest() == "later"
    assert tasks == [asyncio.current_task(), asyncio.current_task()]


async def test_its_context_variables_are_its_own():
    async def sets(value: str) -> str:
        before = SEEN.get()
        SEEN.set(value)
        await suspend()
        return before + ">" + SEEN.get()

    first, second = inline.start(sets("one")), inline.start(sets("two"))
    assert await first.rest() == "unset>one"
    assert await second.rest() == "unset>two"
    assert SEEN.get() == "unset"


async def test_its_own_timeout_cuts_only_itself():
    async def bounded() -> str:
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            return "cut"
        return "not cut"

    started = inline.start(bounded())
    assert await started.rest() == "cut"
    assert asyncio.current_task().cancelling() == 0


async def test_a_cancellation_reaches_it_and_it_can_clean_up():
    cleaned = []

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    started = inline.start(hangs())
    rest = started.rest().__await__()  # driven as a task drives it
    waited_for = rest.send(None)
    assert isinstance(waited_for, asyncio.Future) and not waited_for.done()
    with pytest.raises(asyncio.CancelledError):
        rest.throw(asyncio.CancelledError())
    assert cleaned == [True]


async def test_what_it_raises_is_raised_to_the_caller():
    async def fails_at_once() -> None:
        raise ValueError("at once")

    async def fails_later() -> None:
        await suspend()
        raise ValueError("later")

    with pytest.raises(ValueError, match="at once"):
        inline.start(fails_at_once())
    started = inline.start(fails_later())
    with pytest.raises(ValueError, match="later"):
        await started.rest()
