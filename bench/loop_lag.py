"""Measuring how long the event loop was blocked: a ticker that sleeps a few milliseconds and
records when it woke. The live app serves in the caller's own loop, so this is the server's loop
(bench/event_loop_cases.py).

    async with LoopLag() as lag:
        start = lag.now()
        await client.post(...)
        assert lag.blocked_since(start) < 0.25
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import deque
from collections.abc import Iterator


class LoopLag:
    def __init__(self, interval: float = 0.01, keep: int = 20_000) -> None:
        self.interval = interval
        self._woke: deque[tuple[float, float]] = deque(maxlen=keep)  # (due, woke), in order of waking
        self._due: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self.start()
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="loop-lag-ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self._woke.append((self._due, loop.time()))

    def blocked_since(self, start: float) -> float:
        """The longest the ticker waited beyond its due time since `start`, in seconds.

        A wait that began before `start` (say, while the loop stood still between two hypothesis
        examples) counts only from `start`; a wake-up that is overdue now counts too.
        """
        now = self.now()
        worst = 0.0
        for due, woke in reversed(self._woke):
            if woke < start:
                break
            worst = max(worst, woke - max(due, start))
        if self._due is not None and now > self._due:
            worst = max(worst, now - max(self._due, start))
        return worst


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while the block runs, so the ticker measures requests, not the collector.

    A full collection in the test process (pytest, hypothesis, the app, aiogram's types) walks
    millions of objects and stops the loop for 0.2 to 0.9 s, whatever the request was: measured
    here, that is most of the lag a ticker sees. Plain reference counting still frees what the
    requests leave; the cycles wait for the end of the block.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
