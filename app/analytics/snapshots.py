"""Everything one analytics summary shows, read together; and many summaries in the same statements.

A summary is its install's figures for one chat or all chats, over `days` ending `today`
(`SummaryKey`). `read_snapshots` reads each summary's figures in eight statements whatever its size,
and the summaries of many installs with the same chat filter and days in the same eight
(`install_id IN (…)`): a burst of changes across users costs a few statements, not a few per user.
`SnapshotReader` answers an AnalyticsReader's reads from a snapshot, and reads only what lies
outside it (a `daily(days)` longer than the summary's span, say).

The eight statements are not one transaction (as a summary's reads never were): a snapshot read
while changes commit may show some of them, and the notice of the last one brings a read of all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.analytics.models import ALL_CHATS
from app.analytics.reader import (
    SUM_SQL,
    AnalyticsReader,
    ChatStat,
    Counts,
    DayStat,
    Window,
    as_date,
    counts_of,
    fetch_rows,
)
from app.analytics.shared_reads import summary_span

# Installs per statement: well under every backend's limit of bound parameters.
MAX_INSTALLS = 200


@dataclass(frozen=True)
class SummaryKey:
    install_id: str
    chat_id: int | None
    days: int
    today: date

    @property
    def window(self) -> Window:
        return Window.ending(self.today, self.days)

    @property
    def span(self) -> Window:
        return summary_span(self.today, self.days)

    @property
    def active_since(self) -> tuple[date, ...]:
        """The days a summary counts the users active since: its window's, the week's, the month's."""
        return tuple(sorted({self.window.start, self.today - timedelta(days=6), self.today - timedelta(days=29)}))


@dataclass(frozen=True)
class Snapshot:
    key: SummaryKey
    lifetime: Counts
    days: Mapping[date, DayStat]  # the span's days that have figures
    hourly: tuple[int, ...]  # messages by UTC hour over the window
    active: Mapping[date | None, int]  # users active since each of key.active_since (None: all kept)
    previous_users: int  # distinct users in the window before
    chats: tuple[ChatStat, ...]  # every chat, busiest in the window first


class SnapshotReader(AnalyticsReader):
    """Reads answered from a snapshot; `reader` reads what it does not hold."""

    def __init__(self, snapshot: Snapshot, reader: AnalyticsReader) -> None:
        super().__init__(reader.install_id, reader.chat_id, reader.gate)
        self.snapshot = snapshot
        self._reader = reader

    def _covers(self, window: Window) -> bool:
        span = self.snapshot.key.span
        return span.start <= window.start and window.end <= span.end

    async def lifetime(self) -> Counts:
        return self.snapshot.lifetime

    async def days_with_data(self, window: Window) -> dict[date, DayStat]:
        if not self._covers(window):
            return await self._reader.days_with_data(window)
        return {day: d for day, d in self.snapshot.days.items() if window.start <= day <= window.end}

    def held_daily(self, window: Window) -> list[DayStat] | None:
        """`daily(window)` when the snapshot holds the window, else None."""
        if not self._covers(window):
            return None
        days = self.snapshot.days
        return [days.get(day) or DayStat(day, Counts(), 0) for day in window.days()]

    async def daily(self, window: Window) -> list[DayStat]:
        held = self.held_daily(window)
        return held if held is not None else await self._reader.daily(window)

    async def counts(self, window: Window) -> Counts:
        if not self._covers(window):
            return await self._reader.counts(window)
        days = self.snapshot.days.items()
        return sum((d.counts for day, d in days if window.start <= day <= window.end), Counts())

    async def hourly(self, window: Window) -> list[int]:
        if window != self.snapshot.key.window:
            return await self._reader.hourly(window)
        return list(self.snapshot.hourly)

    async def active_since(self, start: date | None = None) -> int:
        if start not in self.snapshot.active:
            return await self._reader.active_since(start)
        return self.snapshot.active[start]

    async def distinct_users(self, window: Window) -> int:
        if window != self.snapshot.key.window.before():
            return await self._reader.distinct_users(window)
        return self.snapshot.previous_users

    async def chats(self, window: Window, limit: int) -> list[ChatStat]:
        if window != self.snapshot.key.window:
            return await self._reader.chats(window, limit)
        return list(self.snapshot.chats[:limit])


async def read_snapshots(
    keys: Sequence[SummaryKey], gate: asyncio.Semaphore | None = None
) -> dict[SummaryKey, Snapshot]:
    """The snapshots of `keys`: eight statements for the keys of each chat filter and days."""
    groups: dict[tuple[int | None, int, date], list[str]] = {}
    for key in keys:
        installs = groups.setdefault((key.chat_id, key.days, key.today), [])
        if key.install_id not in installs:
            installs.append(key.install_id)
    snapshots: dict[SummaryKey, Snapshot] = {}
    for (chat_id, days, today), installs in groups.items():
        for start in range(0, len(installs), MAX_INSTALLS):
            chunk = installs[start : start + MAX_INSTALLS]
            read = await _read_group([SummaryKey(i, chat_id, days, today) for i in chunk], gate)
            snapshots.update(read)
    return snapshots


async def _read_group(keys: list[SummaryKey], gate: asyncio.Semaphore | None) -> dict[SummaryKey, Snapshot]:
    """Keys that differ only by install."""
    first = keys[0]
    installs = [key.install_id for key in keys]
    marks = ", ".join("?" * len(installs))
    scope, params = f"install_id IN ({marks})", list[Any](installs)
    if first.chat_id is not None:
        scope, params = f"{scope} AND chat_id = ?", [*params, first.chat_id]
    user_scope = f"install_id IN ({marks}) AND chat_id = ?"
    user_params: list[Any] = [*installs, ALL_CHATS if first.chat_id is None else first.chat_id]
    span, window, previous, since = first.span, first.window, first.window.before(), first.active_since
    active_sql = ", ".join(f"SUM(CASE WHEN last_day >= ? THEN 1 ELSE 0 END) AS since_{n}" for n in range(len(since)))
    statements: list[tuple[str, list[Any]]] = [
        (
            f'SELECT install_id, day, {SUM_SQL} FROM "analytics_hours" WHERE {scope} AND day >= ? AND day <= ? '
            "GROUP BY install_id, day",
            [*params, span.start, span.end],
        ),
        (
            f'SELECT install_id, day, users FROM "analytics_days" WHERE {user_scope} AND day >= ? AND day <= ?',
            [*user_params, span.start, span.end],
        ),
        (
            'SELECT install_id, hour, SUM(received) + SUM(sent) AS messages FROM "analytics_hours" '
            f"WHERE {scope} AND day >= ? AND day <= ? GROUP BY install_id, hour",
            [*params, window.start, window.end],
        ),
        (
            f'SELECT install_id, COUNT(*) AS total, {active_sql} FROM "analytics_users" WHERE {user_scope} '
            "GROUP BY install_id",
            [*since, *user_params],
        ),
        (
            'SELECT install_id, COUNT(DISTINCT user_id) AS n FROM "analytics_day_users" '
            f"WHERE {user_scope} AND day >= ? AND day <= ? GROUP BY install_id",
            [*user_params, previous.start, previous.end],
        ),
        (
            f'SELECT install_id, chat_id, {SUM_SQL} FROM "analytics_hours" WHERE {scope} AND day >= ? AND day <= ? '
            "GROUP BY install_id, chat_id",
            [*params, window.start, window.end],
        ),
        (
            'SELECT install_id, chat_id, COUNT(*) AS users FROM "analytics_users" '
            f"WHERE {scope} AND last_day >= ? AND chat_id <> ? GROUP BY install_id, chat_id",
            [*params, window.start, ALL_CHATS],
        ),
        (
            'SELECT install_id, chat_id, title, type, received, sent, joins, leaves FROM "analytics_chats" '
            f"WHERE {scope}",
            params,
        ),
    ]
    (
        day_rows,
        user_day_rows,
        hour_rows,
        active_rows,
        previous_rows,
        chat_rows,
        chat_user_rows,
        chats,
    ) = await asyncio.gather(*(fetch_rows(sql, values, gate) for sql, values in statements))
    per_install = {install: _Parts() for install in installs}
    for row in day_rows:
        per_install[row["install_id"]].day_counts[as_date(row["day"])] = counts_of(row)
    for row in user_day_rows:
        per_install[row["install_id"]].day_users[as_date(row["day"])] = int(row["users"])
    for row in hour_rows:
        per_install[row["install_id"]].hourly[int(row["hour"])] = int(row["messages"] or 0)
    for row in active_rows:
        parts = per_install[row["install_id"]]
        parts.active[None] = int(row["total"])
        for n, day in enumerate(since):
            parts.active[day] = int(row[f"since_{n}"] or 0)
    for row in previous_rows:
        per_install[row["install_id"]].previous_users = int(row["n"] or 0)
    for row in chat_rows:
        per_install[row["install_id"]].chat_counts[int(row["chat_id"])] = counts_of(row)
    for row in chat_user_rows:
        per_install[row["install_id"]].chat_users[int(row["chat_id"])] = int(row["users"])
    for row in chats:
        per_install[row["install_id"]].chats.append(row)
    return {key: per_install[key.install_id].snapshot(key) for key in keys}


class _Parts:
    """One install's rows, as they come."""

    def __init__(self) -> None:
        self.day_counts: dict[date, Counts] = {}
        self.day_users: dict[date, int] = {}
        self.hourly = [0] * 24
        self.active: dict[date | None, int] = {}
        self.previous_users = 0
        self.chat_counts: dict[int, Counts] = {}
        self.chat_users: dict[int, int] = {}
        self.chats: list[dict[str, Any]] = []

    def snapshot(self, key: SummaryKey) -> Snapshot:
        days = {
            day: DayStat(day, self.day_counts.get(day, Counts()), self.day_users.get(day, 0))
            for day in sorted(self.day_counts.keys() | self.day_users.keys())
        }
        stats = [
            ChatStat(
                chat_id=int(chat["chat_id"]),
                title=chat["title"],
                type=chat["type"],
                counts=self.chat_counts.get(int(chat["chat_id"]), Counts()),
                users=self.chat_users.get(int(chat["chat_id"]), 0),
                total=counts_of(chat),
            )
            for chat in self.chats
        ]
        stats.sort(key=lambda s: (-s.counts.messages, -s.users, -s.total.messages, s.chat_id))
        active = self.active or {None: 0, **dict.fromkeys(key.active_since, 0)}
        return Snapshot(
            key=key,
            lifetime=sum((s.total for s in stats), Counts()),
            days=days,
            hourly=tuple(self.hourly),
            active=active,
            previous_users=self.previous_users,
            chats=tuple(stats),
        )
