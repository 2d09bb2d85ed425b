"""Reads of one analytics install's figures. Messages are sums of per-hour rows, daily users are
per-day counters, and users active since a day are a range count over last-seen rows: a read's
cost follows the window's days (and the users active in it), never the number of messages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.analytics.models import ALL_CHATS, AnalyticsHour
from app.sql import is_postgres

COUNTERS = ("received", "sent", "joins", "leaves")


@dataclass(frozen=True)
class Counts:
    received: int = 0
    sent: int = 0
    joins: int = 0
    leaves: int = 0

    @property
    def messages(self) -> int:
        return self.received + self.sent

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, c) + getattr(other, c) for c in COUNTERS))


@dataclass(frozen=True)
class Window:
    """The days from `start` to `end`, both included."""

    start: date
    end: date

    @classmethod
    def ending(cls, end: date, days: int) -> Window:
        return cls(end - timedelta(days=days - 1), end)

    def before(self) -> Window:
        length = (self.end - self.start).days + 1
        return Window.ending(self.start - timedelta(days=1), length)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class DayStat:
    day: date
    counts: Counts
    users: int


@dataclass(frozen=True)
class ChatStat:
    chat_id: int
    title: str | None
    type: str | None
    counts: Counts
    users: int
    total: Counts


def counts_of(row: dict[str, Any]) -> Counts:
    return Counts(*(int(row.get(c) or 0) for c in COUNTERS))


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# Hand-written SQL: tortoise's query building cost more than the database's work on this path.
async def fetch_rows(sql: str, params: list[Any], gate: asyncio.Semaphore | None = None) -> list[dict[str, Any]]:
    """Runs hand-written SQL with `?` placeholders on the current database, once `gate` lets it."""
    conn = AnalyticsHour._meta.db
    if is_postgres(conn):
        parts = sql.split("?")
        sql = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
    else:
        params = [p.isoformat() if isinstance(p, date) else p for p in params]
    if gate is None:
        return await conn.execute_query_dict(sql, params)
    async with gate:
        return await conn.execute_query_dict(sql, params)


SUM_SQL = ", ".join(f"SUM({c}) AS {c}" for c in COUNTERS)


class AnalyticsReader:
    """`gate`: each read waits for it before it takes a connection (live subscriptions' reads share
    a few connections, so that however many there are, the pool stays free for everything else)."""

    def __init__(self, install_id: str, chat_id: int | None = None, gate: asyncio.Semaphore | None = None) -> None:
        self.install_id = install_id
        self.chat_id = chat_id
        self.gate = gate

    async def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return await fetch_rows(sql, params, self.gate)

    def _scope(self) -> tuple[str, list[Any]]:
        if self.chat_id is None:
            return "install_id = ?", [self.install_id]
        return "install_id = ? AND chat_id = ?", [self.install_id, self.chat_id]

    def _user_scope(self) -> tuple[str, list[Any]]:
        return "install_id = ? AND chat_id = ?", [self.install_id, ALL_CHATS if self.chat_id is None else self.chat_id]

    async def lifetime(self) -> Counts:
        where, params = self._scope()
        rows = await self._rows(f'SELECT {SUM_SQL} FROM "analytics_chats" WHERE {where}', params)
        return counts_of(rows[0]) if rows else Counts()

    async def counts(self, window: Window) -> Counts:
        where, params = self._scope()
        rows = await self._rows(
            f'SELECT {SUM_SQL} FROM "analytics_hours" WHERE {where} AND day >= ? AND day <= ?',
            [*params, window.start, window.end],
        )
        return counts_of(rows[0]) if rows else Counts()

    async def daily(self, window: Window) -> list[DayStat]:
        """Every day of the window, oldest first, zero-filled."""
        days = await self.days_with_data(window)
        return [days.get(day) or DayStat(day, Counts(), 0) for day in window.days()]

    async def days_with_data(self, window: Window) -> dict[date, DayStat]:
        """The window's days that have figures: as many as retention kept, however long the window."""
        where, params = self._scope()
        rows = await self._rows(
            f'SELECT day, {SUM_SQL} FROM "analytics_hours" WHERE {where} AND day >= ? AND day <= ? GROUP BY day',
            [*params, window.start, window.end],
        )
        counts = {as_date(row["day"]): counts_of(row) for row in rows}
        where, params = self._user_scope()
        user_rows = await self._rows(
            f'SELECT day, users FROM "analytics_days" WHERE {where} AND day >= ? AND day <= ?',
            [*params, window.start, window.end],
        )
        users = {as_date(row["day"]): int(row["users"]) for row in user_rows}
        return {
            day: DayStat(day, counts.get(day, Counts()), users.get(day, 0))
            for day in sorted(counts.keys() | users.keys())
        }

    async def hourly(self, window: Window) -> list[int]:
        """Messages by UTC hour of day, 0 to 23, over the window."""
        where, params = self._scope()
        rows = await self._rows(
            f'SELECT hour, SUM(received) + SUM(sent) AS messages FROM "analytics_hours" WHERE {where} AND day >= ? AND day <= ? GROUP BY hour',
            [*params, window.start, window.end],
        )
        profile = [0] * 24
        for row in rows:
            profile[int(row["hour"])] = int(row["messages"] or 0)
        return profile

    async def active_since(self, start: date | None = None) -> int:
        """Distinct users seen on `start` or later; without it, in everything retention kept."""
        where, params = self._user_scope()
        if start is not None:
            where, params = f"{where} AND last_day >= ?", [*params, start]
        rows = await self._rows(f'SELECT COUNT(*) AS n FROM "analytics_users" WHERE {where}', params)
        return int(rows[0]["n"])

    async def distinct_users(self, window: Window) -> int:
        """Distinct users in any window (one that ends today is cheaper as `active_since`)."""
        where, params = self._user_scope()
        rows = await self._rows(
            f'SELECT COUNT(DISTINCT user_id) AS n FROM "analytics_day_users" WHERE {where} AND day >= ? AND day <= ?',
            [*params, window.start, window.end],
        )
        return int(rows[0]["n"] or 0) if rows else 0

    async def chats(self, window: Window, limit: int) -> list[ChatStat]:
        """The busiest chats of a window ending today (by messages, then users), at most `limit`."""
        where, params = self._scope()
        rows = await self._rows(
            f'SELECT chat_id, {SUM_SQL} FROM "analytics_hours" WHERE {where} AND day >= ? AND day <= ? GROUP BY chat_id',
            [*params, window.start, window.end],
        )
        counts = {int(row["chat_id"]): counts_of(row) for row in rows}
        user_rows = await self._rows(
            f'SELECT chat_id, COUNT(*) AS users FROM "analytics_users" WHERE {where} AND last_day >= ? AND chat_id <> ? GROUP BY chat_id',
            [*params, window.start, ALL_CHATS],
        )
        users = {int(row["chat_id"]): int(row["users"]) for row in user_rows}
        chats = await self._rows(
            f'SELECT chat_id, title, type, received, sent, joins, leaves FROM "analytics_chats" WHERE {where}', params
        )
        stats = [
            ChatStat(
                chat_id=int(chat["chat_id"]),
                title=chat["title"],
                type=chat["type"],
                counts=counts.get(int(chat["chat_id"]), Counts()),
                users=users.get(int(chat["chat_id"]), 0),
                total=counts_of(chat),
            )
            for chat in chats
        ]
        stats.sort(key=lambda s: (-s.counts.messages, -s.users, -s.total.messages, s.chat_id))
        return stats[:limit]
