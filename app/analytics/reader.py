"""Reads of one analytics install's figures. Messages are sums of per-hour rows, daily users are
per-day counters, and users active since a day are a range count over last-seen rows: a read's
cost follows the window's days (and the users active in it), never the number of messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet

from app.analytics.models import ALL_CHATS, AnalyticsChat, AnalyticsDay, AnalyticsDayUser, AnalyticsHour, AnalyticsUser

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


def _counts(row: dict[str, Any]) -> Counts:
    return Counts(*(int(row.get(c) or 0) for c in COUNTERS))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


_SUMS = {c: Sum(c) for c in COUNTERS}


class AnalyticsReader:
    def __init__(self, install_id: str, chat_id: int | None = None) -> None:
        self.install_id = install_id
        self.chat_id = chat_id

    def _scoped(self, model: Any) -> QuerySet[Any]:
        query = model.filter(install_id=self.install_id)
        return query if self.chat_id is None else query.filter(chat_id=self.chat_id)

    def _users(self, model: Any) -> QuerySet[Any]:
        """Rows of user tables for this reader's chat, or the all-chats rows."""
        return model.filter(install_id=self.install_id, chat_id=ALL_CHATS if self.chat_id is None else self.chat_id)

    async def lifetime(self) -> Counts:
        rows = await self._scoped(AnalyticsChat).annotate(**_SUMS).values(*COUNTERS)
        return _counts(rows[0]) if rows else Counts()

    async def counts(self, window: Window) -> Counts:
        rows = await (
            self._scoped(AnalyticsHour).filter(day__gte=window.start, day__lte=window.end).annotate(**_SUMS).values(*COUNTERS)
        )
        return _counts(rows[0]) if rows else Counts()

    async def daily(self, window: Window) -> list[DayStat]:
        """Every day of the window, oldest first, zero-filled."""
        in_window = {"day__gte": window.start, "day__lte": window.end}
        rows = await self._scoped(AnalyticsHour).filter(**in_window).annotate(**_SUMS).group_by("day").values("day", *COUNTERS)
        counts = {_as_date(row["day"]): _counts(row) for row in rows}
        user_rows = await self._users(AnalyticsDay).filter(**in_window).values("day", "users")
        users = {_as_date(row["day"]): int(row["users"]) for row in user_rows}
        return [DayStat(day, counts.get(day, Counts()), users.get(day, 0)) for day in window.days()]

    async def hourly(self, window: Window) -> list[int]:
        """Messages by UTC hour of day, 0 to 23, over the window."""
        in_window = {"day__gte": window.start, "day__lte": window.end}
        rows = await (
            self._scoped(AnalyticsHour).filter(**in_window).annotate(**_SUMS).group_by("hour").values("hour", *COUNTERS)
        )
        profile = [0] * 24
        for row in rows:
            profile[int(row["hour"])] = _counts(row).messages
        return profile

    async def active_since(self, start: date | None = None) -> int:
        """Distinct users seen on `start` or later; without it, in everything retention kept."""
        query = self._users(AnalyticsUser)
        if start is not None:
            query = query.filter(last_day__gte=start)
        return await query.count()

    async def distinct_users(self, window: Window) -> int:
        """Distinct users in any window (one that ends today is cheaper as `active_since`)."""
        rows = await (
            self._users(AnalyticsDayUser)
            .filter(day__gte=window.start, day__lte=window.end)
            .annotate(users=Count("user_id", distinct=True))
            .values("users")
        )
        return int(rows[0]["users"] or 0) if rows else 0

    async def chats(self, window: Window, limit: int) -> list[ChatStat]:
        """The busiest chats of a window ending today (by messages, then users), at most `limit`."""
        in_window = {"day__gte": window.start, "day__lte": window.end}
        rows = await (
            self._scoped(AnalyticsHour).filter(**in_window).annotate(**_SUMS).group_by("chat_id").values("chat_id", *COUNTERS)
        )
        counts = {int(row["chat_id"]): _counts(row) for row in rows}
        seen = self._scoped(AnalyticsUser).filter(last_day__gte=window.start).exclude(chat_id=ALL_CHATS)
        user_rows = await seen.annotate(users=Count("id")).group_by("chat_id").values("chat_id", "users")
        users = {int(row["chat_id"]): int(row["users"]) for row in user_rows}
        chats = await self._scoped(AnalyticsChat).values("chat_id", "title", "type", *COUNTERS)
        stats = [
            ChatStat(
                chat_id=int(chat["chat_id"]),
                title=chat["title"],
                type=chat["type"],
                counts=counts.get(int(chat["chat_id"]), Counts()),
                users=users.get(int(chat["chat_id"]), 0),
                total=_counts(chat),
            )
            for chat in chats
        ]
        stats.sort(key=lambda s: (-s.counts.messages, -s.users, -s.total.messages, s.chat_id))
        return stats[:limit]
