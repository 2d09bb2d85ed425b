"""Live updates: "something changed" notices from whichever process ran a plugin, to the
subscribers of any process, through broadcaster (memory:// in one process, Redis across many).

A notice carries no data, only the channel: a subscriber reads the current state itself. So
notices can be coalesced and lost without harm: the next one, or the resync after a Redis outage,
brings the subscriber up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from broadcaster import Broadcast

log = logging.getLogger(__name__)


def channel(user_id: str, slug: str, topic: str) -> str:
    return f"plugboard:{user_id}:{slug}:{topic}"


class Changes:
    """Wake-ups of one subscription: many notices between two waits count as one."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def mark(self) -> None:
        self._changed.set()

    async def wait(self) -> None:
        await self._changed.wait()
        self._changed.clear()


class LiveUpdates:
    def __init__(self, broadcast: Broadcast) -> None:
        self.broadcast = broadcast
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_failure_log = 0.0

    async def start(self) -> None:
        await self.broadcast.connect()
        self._task = asyncio.create_task(self._publish_forever(), name="live-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.broadcast.disconnect()

    def notify(self, channel_name: str) -> None:
        """Never waits and never fails: the publisher task sends it (once per burst)."""
        self._dirty.add(channel_name)
        self._wake.set()

    async def _publish_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            channels, self._dirty = self._dirty, set()
            for name in channels:
                try:
                    await self.broadcast.publish(name, "changed")
                except Exception as exc:  # pub/sub down: subscribers resync when it returns
                    now = time.monotonic()
                    if now - self._last_failure_log > 30:
                        self._last_failure_log = now
                        log.warning("live update not published (%s); subscribers resync later", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def watch(self, channel_name: str) -> AsyncIterator[Changes]:
        changes = Changes()
        async with self.broadcast.subscribe(channel_name) as subscriber:

            async def forward() -> None:
                async for _ in subscriber:  # type: ignore[attr-defined]
                    changes.mark()

            reader = asyncio.create_task(forward())
            try:
                yield changes
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
