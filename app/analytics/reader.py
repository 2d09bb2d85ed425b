"""Reads of one analytics install's figures, in the install's zone. Messages are sums of
15-minute bucket rows grouped by local day and hour (app/analytics/zoned.py), users per local day a
mask test over per-UTC-day user rows, and users active since a local midnight a range count over
last-seen buckets: a read's cost follows the window's days (and the users active in it), never the
number of messages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.analytics.buckets import Span, bucket_of, days_span, local_midnight
from app.analytics.models import ALL_CHATS, AnalyticsBucket
from app.analytics.zoned import ZonedSpan, local_date_of, local_day_users_sql
from app.sql import is_postgres

COUNTERS = ("received", "sent", "joins", "leaves")
UTC_ZONE = ZoneInfo("UTC")


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

    def __len__(self) -> int:
        return (self.end - self.start).days + 1

    def buckets(self, zone: ZoneInfo) -> Span:
        """The window's buckets in `zone`."""
        return days_span(self.start, self.end, zone)


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
    get = row.get
    return Counts(int(get("received") or 0), int(get("sent") or 0), int(get("joins") or 0), int(get("leaves") or 0))


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# Hand-written SQL: tortoise's query building cost more than the database's work on this path.
async def fetch_rows(sql: str, params: list[Any], gate: asyncio.Semaphore | None = None) -> list[dict[str, Any]]:
    """Runs hand-written SQL with `?` placeholders on the current database, once `gate` lets it."""
    conn = AnalyticsBucket._meta.db
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


def midnight_bucket(day: date, zone: ZoneInfo) -> int:
    return bucket_of(local_midnight(day, zone))


def zoned(window: Window, zone: ZoneInfo) -> ZonedSpan:
    return ZonedSpan(zone, window.buckets(zone))


class AnalyticsReader:
    """`zone`: the install's, which every day and hour is in. `gate`: each read waits for it before
    it takes a connection (live subscriptions' reads share a few connections, so that however many
    there are, the pool stays free for everything else)."""

    def __init__(
        self,
        install_id: str,
        chat_id: int | None = None,
        gate: asyncio.Semaphore | None = None,
        zone: ZoneInfo = UTC_ZONE,
    ) -> None:
        self.install_id = install_id
        self.chat_id = chat_id
        self.gate = gate
        self.zone = zone

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
        span = window.buckets(self.zone)
        rows = await self._rows(
            f'SELECT {SUM_SQL} FROM "analytics_buckets" WHERE {where} AND bucket >= ? AND bucket < ?',
            [*params, span.first, span.end],
        )
        return counts_of(rows[0]) if rows else Counts()

    async def daily(self, window: Window) -> list[DayStat]:
        """Every day of the window, oldest first, zero-filled."""
        days = await self.days_with_data(window)
        return [days.get(day) or DayStat(day, Counts(), 0) for day in window.days()]

    async def days_with_data(self, window: Window) -> dict[date, DayStat]:
        """The window's days that have figures: as many as retention kept, however long the window."""
        where, params = self._scope()
        sql, sql_params = day_counts_sql(zoned(window, self.zone), where, params)
        counts = {local_date_of(int(row["local_day"])): counts_of(row) for row in await self._rows(sql, sql_params)}
        where, params = self._user_scope()
        sql, sql_params = day_users_sql(zoned(window, self.zone), where, params)
        users = {local_date_of(int(row["local_day"])): int(row["users"]) for row in await self._rows(sql, sql_params)}
        return {
            day: DayStat(day, counts.get(day, Counts()), users.get(day, 0))
            for day in sorted(counts.keys() | users.keys())
            if window.start <= day <= window.end
        }

    async def hourly(self, window: Window) -> list[int]:
        """Messages by local hour of day, 0 to 23, over the window."""
        where, params = self._scope()
        sql, sql_params = hour_counts_sql(zoned(window, self.zone), where, params)
        profile = [0] * 24
        for row in await self._rows(sql, sql_params):
            profile[int(row["hour"])] += int(row["messages"] or 0)
        return profile

    async def active_since(self, start: date | None = None) -> int:
        """Distinct users seen since `start` began in the zone; without it, in everything retention kept."""
        where, params = self._user_scope()
        if start is not None:
            where, params = f"{where} AND last_bucket >= ?", [*params, midnight_bucket(start, self.zone)]
        rows = await self._rows(f'SELECT COUNT(*) AS n FROM "analytics_seen" WHERE {where}', params)
        return int(rows[0]["n"])

    async def distinct_users(self, window: Window) -> int:
        """Distinct users in any window (one that ends today is cheaper as `active_since`)."""
        where, params = self._user_scope()
        sql, sql_params = distinct_users_sql(zoned(window, self.zone), where)
        rows = await self._rows(sql, [*params, *sql_params])
        return int(rows[0]["n"] or 0) if rows else 0

    async def chats(self, window: Window, limit: int, ends_today: bool = True) -> list[ChatStat]:
        """The busiest chats of a window (by messages, then users), at most `limit`. `ends_today`:
        no user was seen after the window, so its users are a last-seen range count."""
        where, params = self._scope()
        span = window.buckets(self.zone)
        rows = await self._rows(
            f'SELECT chat_id, {SUM_SQL} FROM "analytics_buckets" WHERE {where} AND bucket >= ? AND bucket < ? GROUP BY chat_id',
            [*params, span.first, span.end],
        )
        counts = {int(row["chat_id"]): counts_of(row) for row in rows}
        if ends_today:
            user_rows = await self._rows(
                f'SELECT chat_id, COUNT(*) AS users FROM "analytics_seen" WHERE {where} AND last_bucket >= ? AND chat_id <> ? GROUP BY chat_id',
                [*params, span.first, ALL_CHATS],
            )
        else:
            sql, sql_params = chat_users_sql(zoned(window, self.zone), where)
            user_rows = await self._rows(sql, [*params, ALL_CHATS, *sql_params])
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


# The statements, shared with app/analytics/snapshots.py (which reads many installs at once: its
# scopes say `install_id IN (…)`). Those given `scope_params` return every parameter in order; the
# others take the scope's parameters first, then theirs.


def day_counts_sql(
    span: ZonedSpan, scope: str, scope_params: list[Any], by_chat: bool = False
) -> tuple[str, list[Any]]:
    """Counts per local day (and per chat too, `by_chat`: one scan for the days and the chats)."""
    day, params = span.day_sql()
    chat = "chat_id, " if by_chat else ""
    return (
        f'SELECT install_id, {chat}{day} AS local_day, {SUM_SQL} FROM "analytics_buckets" '
        f"WHERE {scope} AND bucket >= ? AND bucket < ? GROUP BY install_id, {chat}local_day",
        [*params, *scope_params, span.span.first, span.span.end],
    )


def hour_counts_sql(span: ZonedSpan, scope: str, scope_params: list[Any]) -> tuple[str, list[Any]]:
    hour, params = span.hour_sql()
    return (
        f'SELECT install_id, {hour} AS hour, SUM(received) + SUM(sent) AS messages FROM "analytics_buckets" '
        f"WHERE {scope} AND bucket >= ? AND bucket < ? GROUP BY install_id, hour",
        [*params, *scope_params, span.span.first, span.span.end],
    )


def day_users_sql(span: ZonedSpan, scope: str, scope_params: list[Any]) -> tuple[str, list[Any]]:
    """Distinct users per local day: every parameter, the scope's repeated in each part."""
    parts, params = local_day_users_sql(span, scope, scope_params)
    return (
        f"SELECT install_id, local_day, COUNT(DISTINCT user_id) AS users FROM ({parts}) AS seen "
        "GROUP BY install_id, local_day",
        params,
    )


def distinct_users_sql(span: ZonedSpan, scope: str) -> tuple[str, list[Any]]:
    presence, params = span.presence_sql()
    first_day, last_day = span.day_range()
    return (
        f'SELECT install_id, COUNT(DISTINCT user_id) AS n FROM "analytics_user_days" '
        f"WHERE {scope} AND day >= ? AND day <= ? AND {presence} GROUP BY install_id",
        [first_day, last_day, *params],
    )


def chat_users_sql(span: ZonedSpan, scope: str) -> tuple[str, list[Any]]:
    """Distinct users per chat over the span; parameters: the scope's, ALL_CHATS, then these."""
    presence, params = span.presence_sql()
    first_day, last_day = span.day_range()
    return (
        f'SELECT install_id, chat_id, COUNT(DISTINCT user_id) AS users FROM "analytics_user_days" '
        f"WHERE {scope} AND chat_id <> ? AND day >= ? AND day <= ? AND {presence} GROUP BY install_id, chat_id",
        [first_day, last_day, *params],
    )
