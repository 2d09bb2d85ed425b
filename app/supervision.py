"""Background tasks that never die silently, and heartbeats that tell /healthz they still work.

`supervise` keeps a loop running: a crash is logged with its traceback and the loop starts again
after a short, growing pause. `spawn` starts a one-off task whose failure is logged the moment it
ends, so no task leaves "Task exception was never retrieved" behind. A `Heartbeat` is beaten by a
loop each time it has shown that it works; once its last beat is older than `stale_after`, the
loop is stalled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 0.5
MAX_RESTART_PAUSE_SECONDS = 30.0


class Heartbeat:
    def __init__(self, name: str, stale_after: float) -> None:
        self.name = name
        self.stale_after = stale_after
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._last

    def stalled(self) -> bool:
        return self.age() > self.stale_after


def log_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: logs how a task failed (and so marks its exception retrieved)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task %s failed", task.get_name(), exc_info=error)


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(log_failure)
    return task


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Runs `run` for as long as this task lives, starting it again whenever it ends or raises."""
    pause = RESTART_PAUSE_SECONDS
    while True:
        started = time.monotonic()
        error: BaseException | None = None
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        if time.monotonic() - started > MAX_RESTART_PAUSE_SECONDS:
            pause = RESTART_PAUSE_SECONDS  # it ran well for a while: a new failure starts the pauses over
        if error is None:
            log.error("%s ended on its own; starting it again in %.1f s", name, pause)
        else:
            log.error("%s crashed; starting it again in %.1f s", name, pause, exc_info=error)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_RESTART_PAUSE_SECONDS)


def start_supervised(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    return spawn(supervise(name, run), name)


async def cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancels the tasks and waits until they have ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
