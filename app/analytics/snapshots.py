"""Everything one analytics summary shows, read together; and many summaries in the same statements.

A summary is its install's figures for one chat or all chats, over the local days `start` to
`end` of its zone, as seen on `today` (`SummaryKey`). `read_snapshots` reads each summary's figures
in eight statements whatever its size (seven over the days still open, one of the closed days'
roll-ups: app/analytics/closed_days.py), and the summaries of many installs with the same chat
filter, range and zone in the same eight
(`install_id IN (…)`): a burst of changes across users costs a few statements, not a few per user.
`SnapshotReader` answers an AnalyticsReader's reads from a snapshot, and reads only what lies
outside it (a `daily(days)` longer than the summary's span, say).

The statements are not one transaction (as a summary's reads never were): a snapshot read
while changes commit may show some of them, and the notice of the last one brings a read of all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.analytics.buckets import zone_named
from app.analytics.closed_days import ClosedDays, last_closed, read_closed
from app.analytics.models import ALL_CHATS
from app.analytics.reader import (
    AnalyticsReader,
    ChatStat,
    Counts,
    DayStat,
    Window,
    chat_users_sql,
    counts_of,
    day_counts_sql,
    day_users_sql,
    distinct_users_sql,
    fetch_rows,
    hour_counts_sql,
    midnight_bucket,
    zoned,
)
from app.analytics.shared_reads import summary_span
from app.analytics.zoned import local_date_of

# Installs per statement: well under every backend's limit of bound parameters.
MAX_INSTALLS = 200


@dataclass(frozen=True)
class SummaryKey:
    """`zone`: an IANA name; `start` to `end` and `today` are its local dates."""

    install_id: str
    chat_id: int | None
    start: date
    end: date
    today: date
    zone: str = "UTC"
    # When the key was made, by its reader's clock: from two hours into today, yesterday comes
    # rolled up (app/analytics/closed_days.py). Not part of what the key names.
    now: datetime | None = field(default=None, compare=False, hash=False)

    @classmethod
    def ending_today(
        cls, install_id: str, chat_id: int | None, days: int, today: date, zone: str = "UTC"
    ) -> SummaryKey:
        window = Window.ending(today, days)
        return cls(install_id, chat_id, window.start, window.end, today, zone)

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    @property
    def days(self) -> int:
        return len(self.window)

    @property
    def ends_today(self) -> bool:
        return self.end >= self.today

    @property
    def tz(self) -> ZoneInfo:
        return zone_named(self.zone)

    @property
    def span(self) -> Window:
        return summary_span(self.today, self.window)

    @property
    def active_since(self) -> tuple[date, ...]:
        """The days a summary counts the users active since: its window's, the week's, the month's."""
        return tuple(sorted({self.window.start, self.today - timedelta(days=6), self.today - timedelta(days=29)}))


@dataclass(frozen=True)
class Snapshot:
    key: SummaryKey
    lifetime: Counts
    days: Mapping[date, DayStat]  # the span's days that have figures
    hourly: tuple[int, ...]  # messages by local hour over the window
    active: Mapping[date | None, int]  # users active since each of key.active_since (None: all kept)
    previous_users: int  # distinct users in the window before
    chats: tuple[ChatStat, ...]  # every chat, busiest in the window first


class SnapshotReader(AnalyticsReader):
    """Reads answered from a snapshot; `reader` reads what it does not hold."""

    def __init__(self, snapshot: Snapshot, reader: AnalyticsReader) -> None:
        super().__init__(reader.install_id, reader.chat_id, reader.gate, reader.zone)
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

    async def chats(self, window: Window, limit: int, ends_today: bool = True) -> list[ChatStat]:
        key = self.snapshot.key
        if window != key.window or ends_today != key.ends_today:
            return await self._reader.chats(window, limit, ends_today)
        return list(self.snapshot.chats[:limit])


async def read_snapshots(
    keys: Sequence[SummaryKey], gate: asyncio.Semaphore | None = None
) -> dict[SummaryKey, Snapshot]:
    """The snapshots of `keys`: eight statements for the keys of each chat filter, range and zone
    (and three more for each install that has a closed day not rolled up yet)."""
    groups: dict[tuple[int | None, date, date, date, str], list[str]] = {}
    nows: dict[tuple[int | None, date, date, date, str], datetime | None] = {}
    for key in keys:
        group = (key.chat_id, key.start, key.end, key.today, key.zone)
        installs = groups.setdefault(group, [])
        if key.install_id not in installs:
            installs.append(key.install_id)
        earlier = nows.get(group, key.now)
        nows[group] = None if earlier is None or key.now is None else min(earlier, key.now)
    snapshots: dict[SummaryKey, Snapshot] = {}
    for group, installs in groups.items():
        for first in range(0, len(installs), MAX_INSTALLS):
            chunk = installs[first : first + MAX_INSTALLS]
            read = await _read_group([SummaryKey(i, *group, now=nows[group]) for i in chunk], gate)
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
    zone = first.tz
    span, window, previous, since = first.span, first.window, first.window.before(), first.active_since
    active_sql = ", ".join(f"SUM(CASE WHEN last_bucket >= ? THEN 1 ELSE 0 END) AS since_{n}" for n in range(len(since)))
    # The span's closed days come rolled up (app/analytics/closed_days.py); the rest, from buckets.
    closed_end = min(span.end, last_closed(first.today, zone, first.now))
    closed_span = Window(span.start, closed_end) if span.start <= closed_end else None
    open_span = Window(max(span.start, closed_end + timedelta(days=1)), span.end)
    open_window = Window(max(window.start, open_span.start), window.end)
    span_days, span_users = (
        day_counts_sql(zoned(open_span, zone), scope, params, by_chat=True),
        day_users_sql(zoned(open_span, zone), user_scope, user_params),
    )
    window_hours = hour_counts_sql(zoned(open_window, zone), scope, params)  # none when the window is closed
    previous_users = distinct_users_sql(zoned(previous, zone), user_scope)
    window_span = window.buckets(zone)
    if first.ends_today:
        chat_users = (
            'SELECT install_id, chat_id, COUNT(*) AS users FROM "analytics_seen" '
            f"WHERE {scope} AND last_bucket >= ? AND chat_id <> ? GROUP BY install_id, chat_id",
            [*params, window_span.first, ALL_CHATS],
        )
    else:
        sql, sql_params = chat_users_sql(zoned(window, zone), scope)
        chat_users = (sql, [*params, ALL_CHATS, *sql_params])
    statements: list[tuple[str, list[Any]]] = [
        span_days,
        span_users,
        window_hours,
        (
            f'SELECT install_id, COUNT(*) AS total, {active_sql} FROM "analytics_seen" WHERE {user_scope} '
            "GROUP BY install_id",
            [*(midnight_bucket(day, zone) for day in since), *user_params],
        ),
        (previous_users[0], [*user_params, *previous_users[1]]),
        chat_users,
        (
            'SELECT install_id, chat_id, title, type, received, sent, joins, leaves FROM "analytics_chats" '
            f"WHERE {scope}",
            params,
        ),
    ]
    fetched, closed = await asyncio.gather(
        asyncio.gather(*(fetch_rows(sql, values, gate) for sql, values in statements)),
        read_closed(installs, first.chat_id, first.zone, closed_span, gate) if closed_span else _nothing_closed(),
    )
    day_rows, user_day_rows, hour_rows, active_rows, previous_rows, chat_user_rows, chats = fetched
    per_install = {install: _Parts() for install in installs}
    for install, days in closed.items():
        per_install[install].add_closed(days, window)
    for row in day_rows:  # per chat and local day: the span's days, and the window's chats
        parts, day, counts = per_install[row["install_id"]], local_date_of(int(row["local_day"])), counts_of(row)
        parts.day_counts[day] = parts.day_counts.get(day, Counts()) + counts
        if window.start <= day <= window.end:
            chat = int(row["chat_id"])
            parts.chat_counts[chat] = parts.chat_counts.get(chat, Counts()) + counts
    for row in user_day_rows:
        per_install[row["install_id"]].day_users[local_date_of(int(row["local_day"]))] = int(row["users"])
    for row in hour_rows:
        per_install[row["install_id"]].hourly[int(row["hour"])] += int(row["messages"] or 0)
    for row in active_rows:
        parts = per_install[row["install_id"]]
        parts.active[None] = int(row["total"])
        for n, day in enumerate(since):
            parts.active[day] = int(row[f"since_{n}"] or 0)
    for row in previous_rows:
        per_install[row["install_id"]].previous_users = int(row["n"] or 0)
    for row in chat_user_rows:
        per_install[row["install_id"]].chat_users[int(row["chat_id"])] = int(row["users"])
    for row in chats:
        per_install[row["install_id"]].chats.append(row)
    return {key: per_install[key.install_id].snapshot(key) for key in keys}


async def _nothing_closed() -> dict[str, ClosedDays]:
    return {}


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

    def add_closed(self, closed: ClosedDays, window: Window) -> None:
        for day, stat in closed.days.items():
            self.day_counts[day] = stat.counts
            self.day_users[day] = stat.users
        for day, chats in closed.chat_counts.items():
            if window.start <= day <= window.end:
                for chat, counts in chats.items():
                    self.chat_counts[chat] = self.chat_counts.get(chat, Counts()) + counts
        for day, hours in closed.hours.items():
            if window.start <= day <= window.end:
                for hour, messages in enumerate(hours):
                    self.hourly[hour] += messages

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
