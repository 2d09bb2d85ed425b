"""Whether the database answers, for the lanes that process events: when one loses it, a single
probe asks again every `interval` until it answers, and the lanes wait for that."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from app.db_errors import describe
from app.supervision import cancel, spawn

log = logging.getLogger("app.plugins.dispatcher")

PROBE_TIMEOUT_SECONDS = 5.0
QUIET_LOG_SECONDS = 30.0  # at most one "database unavailable" line this often


async def always_answers() -> bool:
    return True


class DatabaseWatch:
    """While the database is unavailable, one probe asks it again every `interval`; lanes wait for it."""

    def __init__(self, answers: Callable[[], Awaitable[bool]], interval: float) -> None:
        self._answers = answers
        self.interval = interval
        self._up = asyncio.Event()
        self._up.set()
        self._probe: asyncio.Task[None] | None = None
        self._logged_at = float("-inf")

    def lost(self, error: BaseException) -> None:
        if self._up.is_set():
            self._up.clear()
            now = time.monotonic()
            if now - self._logged_at >= QUIET_LOG_SECONDS:
                self._logged_at = now
                log.warning("database unavailable, event processing waits for it: %s", describe(error))
        if self._probe is None or self._probe.done():
            self._probe = spawn(self._probe_until_back(), "database-probe")

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def back(self, within: float) -> bool:
        """Waits at most `within` seconds for the database to answer again; whether it did."""
        if self._up.is_set():
            return True
        if within <= 0:
            return False
        try:
            async with asyncio.timeout(within):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    async def answers(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                return await self._answers()
        except Exception:  # TimeoutError, or a ping that raised instead of answering False
            return False

    async def _probe_until_back(self) -> None:
        # A pause first, even when the database answers at once: lanes retry at most once an interval.
        await asyncio.sleep(self.interval)
        # Polling is the point: the database is outside, no Event can say it is back.
        while not await self.answers():  # noqa: ASYNC110
            await asyncio.sleep(self.interval)
        self._up.set()

    async def stop(self) -> None:
        if self._probe is not None:
            await cancel([self._probe])
            self._probe = None
