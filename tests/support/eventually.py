"""Waiting for a condition outside the test's reach, when it has no event of its own to wait on.

A test waits on the event itself wherever there is one (an asyncio.Event, a subscription's next
message, a task). Where there is none (a row another process writes, what a Redis server reports),
it polls with `eventually`. The deadline is no claim about speed: it only turns a hang into a
failure that says what never happened, long before the suite's own timeout (pyproject.toml).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEADLINE_SECONDS = 60.0
# A whole `python -m app` process's start: the interpreter, the imports (aiogram's types alone take
# 20-60 s on a loaded 2-core machine), the migrations. Again a hang guard, not a claim about speed.
START_SECONDS = 180.0


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], what: str = ..., timeout: float = ..., interval: float = ...
) -> T: ...
@overload
async def eventually(check: Callable[[], T], what: str = ..., timeout: float = ..., interval: float = ...) -> T: ...
async def eventually(
    check: Callable[[], Any],
    what: str = "the condition",
    timeout: float = DEADLINE_SECONDS,
    interval: float = 0.02,
) -> Any:
    """Calls `check` (plain or async) until it returns something true, and returns that."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = check()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"{what}: not reached within {timeout:g} s (last seen: {value!r})")
        await asyncio.sleep(interval)
