"""The reads behind one analytics summary, shared by its fields.

A summary's fields ask for overlapping things: the period, the period before, this week, today
and the daily series are all days of the last few weeks. `SharedReads` asks the database once for
each distinct read, and serves the days of every window inside `span` from one read of the span.
It keeps only the span's days that have figures, so a summary of 3,650 days holds what retention
kept, not 7,300 empty days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import date, timedelta
from typing import Any, TypeVar

from app.analytics.reader import AnalyticsReader, ChatStat, Counts, DayStat, Window

R = TypeVar("R")


def summary_span(today: date, window: Window) -> Window:
    """The days a summary of `window` reads: the window, the window before, and the two weeks to today."""
    return Window(min(window.before().start, today - timedelta(days=13)), max(window.end, today))


class SharedReads(AnalyticsReader):
    def __init__(self, reader: AnalyticsReader, span: Window) -> None:
        super().__init__(reader.install_id, reader.chat_id, reader.gate, reader.zone)
        self._reader = reader
        self.span = span
        self._reads: dict[Hashable, asyncio.Future[Any]] = {}

    def _once(self, key: Hashable, read: Callable[[], Awaitable[R]]) -> Awaitable[R]:
        future = self._reads.get(key)
        if future is None:
            future = self._reads[key] = asyncio.ensure_future(read())
        return future

    def _covers(self, window: Window) -> bool:
        return self.span.start <= window.start and window.end <= self.span.end

    async def lifetime(self) -> Counts:
        return await self._once("lifetime", self._reader.lifetime)

    async def _span_days(self) -> dict[date, DayStat]:
        return await self._once(("days", self.span), lambda: self._reader.days_with_data(self.span))

    async def days_with_data(self, window: Window) -> dict[date, DayStat]:
        if not self._covers(window):
            return await self._once(("days", window), lambda: self._reader.days_with_data(window))
        return {day: d for day, d in (await self._span_days()).items() if window.start <= day <= window.end}

    async def daily(self, window: Window) -> list[DayStat]:
        if not self._covers(window):
            return await self._once(("daily", window), lambda: self._reader.daily(window))
        days = await self._span_days()
        return [days.get(day) or DayStat(day, Counts(), 0) for day in window.days()]

    async def counts(self, window: Window) -> Counts:
        if not self._covers(window):
            return await self._once(("counts", window), lambda: self._reader.counts(window))
        days = await self._span_days()
        return sum((d.counts for day, d in days.items() if window.start <= day <= window.end), Counts())

    async def hourly(self, window: Window) -> list[int]:
        return await self._once(("hourly", window), lambda: self._reader.hourly(window))

    async def active_since(self, start: date | None = None) -> int:
        return await self._once(("active_since", start), lambda: self._reader.active_since(start))

    async def distinct_users(self, window: Window) -> int:
        return await self._once(("distinct_users", window), lambda: self._reader.distinct_users(window))

    async def chats(self, window: Window, limit: int, ends_today: bool = True) -> list[ChatStat]:
        return await self._once(
            ("chats", window, limit, ends_today), lambda: self._reader.chats(window, limit, ends_today)
        )
