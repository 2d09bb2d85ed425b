"""Closed days: each local day of an install's zone rolled up once it can no longer change, so a
summary reads a row a day (and one per chat) for all but today (and yesterday, in today's first two
hours), however many messages the day had.

A local day is closed two hours after it ends (`last_closed`). Events are counted in the bucket
of their own date, so only an event that arrives late can land in a closed day: its run counts it
as usual and, in the same transaction, moves the version of its UTC day on (`bump`); a person
forgotten moves every day's on. A closed day holds the sum of the versions of the UTC days it spans
(one or two), and is used only while that sum is still theirs: a late event retires the roll-ups of
its own days, no others. A roll-up reads the versions before it reads the buckets, so the rows it
writes hold at least everything committed at those versions; rows of older ones are never used
(and never overwrite newer ones). The first summary after a zone change, a late event or a new
day rolls up what it lacks, from the buckets and the users' masks (app/analytics/zoned.py), in the
statements a summary made before closed days."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics.buckets import bucket_of, days_span, zone_named
from app.analytics.models import ALL_CHATS, AnalyticsClosedDay, AnalyticsVersion
from app.analytics.reader import Counts, DayStat, Window, counts_of, fetch_rows, midnight_bucket, zoned
from app.analytics.zoned import EPOCH, QUARTERS, local_date_of, local_day_users_sql
from app.db_errors import describe
from app.sql import insert_rows

log = logging.getLogger(__name__)

# An event whose date is this many buckets (an hour) before its run's clock is late; a day is closed
# this many buckets (two hours) after its end. So an event that is not late can land in a closed day
# only when its process's clock is an hour behind the reader's.
LATE_BUCKETS = 4
CLOSED_AFTER_BUCKETS = 8
HOURS = 24
WHOLE_INSTALL = -1  # the version day that every day's version includes
_COUNTERS = ("received", "sent", "joins", "leaves")
_COLUMNS = ("install_id", "chat_id", "zone", "day", "version", *_COUNTERS, "users", "hours")


def last_closed(today: date, zone: ZoneInfo, now: datetime | None = None) -> date:
    """The last local day that is closed when it is `today` in `zone`: yesterday, once `now` (the
    reader's clock) is two hours into today; without `now`, the day before yesterday."""
    if now is not None and bucket_of(now) >= midnight_bucket(today, zone) + CLOSED_AFTER_BUCKETS:
        return today - timedelta(days=1)
    return today - timedelta(days=2)


def is_late(moment: datetime, now: datetime) -> bool:
    """Whether an event of `moment` counted at `now` may land in a closed day."""
    return bucket_of(moment) < bucket_of(now) - LATE_BUCKETS


@dataclass
class ClosedDays:
    """One install's closed days in one scope (a chat, or all chats), those with figures only."""

    days: dict[date, DayStat] = field(default_factory=dict)
    chat_counts: dict[date, dict[int, Counts]] = field(default_factory=dict)
    hours: dict[date, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    chat_id: int
    day: date
    counts: Counts
    users: int
    # By hour; a row read back keeps its stored text ("0,3,…") until a summary uses its hours
    # (`hours_of`): most rows read are other chats', whose hours no summary of this scope shows.
    hours: tuple[int, ...] | str
    version: int = 0


Versions = dict[int, int]  # an install's versions, by UTC day (WHOLE_INSTALL: of every day)


def utc_days(window: Window, zone: ZoneInfo) -> dict[date, range]:
    """The UTC days (days since 1970-01-01) that each local day of `window` in `zone` spans."""
    spans = {}
    for day in window.days():
        span = days_span(day, day, zone)
        spans[day] = range(span.first // QUARTERS, (span.end - 1) // QUARTERS + 1)
    return spans


def version_of(versions: Versions, utc_span: range) -> int:
    """The version a closed day spanning `utc_span` holds while it is still current."""
    return versions.get(WHOLE_INSTALL, 0) + sum(versions.get(utc_day, 0) for utc_day in utc_span)


async def read_versions(
    installs: list[str], spans: dict[date, range], gate: asyncio.Semaphore | None
) -> dict[str, Versions]:
    """The installs' versions of the UTC days in `spans` (utc_days), and of every day."""
    first, last = min(span[0] for span in spans.values()), max(span[-1] for span in spans.values())
    marks = ", ".join("?" * len(installs))
    rows = await fetch_rows(
        f'SELECT install_id, day, version FROM "analytics_versions" WHERE install_id IN ({marks}) '
        "AND ((day >= ? AND day <= ?) OR day = ?)",
        [*installs, first, last, WHOLE_INSTALL],
        gate,
    )
    versions: dict[str, Versions] = {install: {} for install in installs}
    for row in rows:
        versions[row["install_id"]][int(row["day"])] = int(row["version"])
    return versions


async def read_closed(
    installs: list[str], chat_id: int | None, zone_name: str, window: Window, gate: asyncio.Semaphore | None = None
) -> dict[str, ClosedDays]:
    """The closed days of `window` (every one of them must be closed) for each install, rolling up
    the days an install lacks: one statement, and three more per install that lacks some."""
    spans = utc_days(window, zone_named(zone_name))  # once: the same for every install
    marks = ", ".join("?" * len(installs))
    sql = (
        "SELECT install_id, chat_id, day, version, received, sent, joins, leaves, users, hours "
        f'FROM "analytics_closed_days" WHERE install_id IN ({marks}) AND zone = ? AND day >= ? AND day <= ?'
    )
    params: list[Any] = [*installs, zone_name, _ordinal(window.start), _ordinal(window.end)]
    if chat_id is not None:
        sql, params = f"{sql} AND chat_id IN (?, ?)", [*params, chat_id, ALL_CHATS]
    rows_read, versions = await asyncio.gather(fetch_rows(sql, params, gate), read_versions(installs, spans, gate))
    found: dict[str, list[_Row]] = {install: [] for install in installs}
    for row in rows_read:
        found[row["install_id"]].append(_row(row))
    result = {}
    for install, rows in found.items():
        current = {day: version_of(versions[install], span) for day, span in spans.items()}
        rows = [row for row in rows if row.version == current[row.day]]
        have = {row.day for row in rows if row.chat_id == ALL_CHATS}
        missing = [day for day in window.days() if day not in have]
        if missing:
            rolled = await roll_up(install, zone_name, Window(missing[0], missing[-1]), gate)
            rows = [row for row in rows if not missing[0] <= row.day <= missing[-1]] + rolled
        result[install] = _scoped(rows, chat_id)
    return result


async def roll_up(install_id: str, zone_name: str, window: Window, gate: asyncio.Semaphore | None) -> list[_Row]:
    """Rolls up the install's closed days of `window` from buckets and users' masks, stores them,
    and returns them (a failed store costs the next summary the same roll-up, nothing more)."""
    zone = zone_named(zone_name)
    spans = utc_days(window, zone)
    versions = (await read_versions([install_id], spans, gate))[install_id]
    span = zoned(window, zone)
    day, day_params = span.day_sql()
    hour, hour_params = span.hour_sql()
    sums = ", ".join(f"SUM({c}) AS {c}" for c in _COUNTERS)
    hours_sql = (
        f'SELECT chat_id, {day} AS local_day, {hour} AS hour, {sums} FROM "analytics_buckets" '
        "WHERE install_id = ? AND bucket >= ? AND bucket < ? GROUP BY chat_id, local_day, hour"
    )
    parts, user_params = local_day_users_sql(span, "install_id = ?", [install_id], key="chat_id")
    users_sql = f"SELECT chat_id, local_day, COUNT(DISTINCT user_id) AS users FROM ({parts}) AS seen GROUP BY chat_id, local_day"
    hour_rows, user_rows = await asyncio.gather(
        fetch_rows(hours_sql, [*day_params, *hour_params, install_id, span.span.first, span.span.end], gate),
        fetch_rows(users_sql, user_params, gate),
    )
    counts: dict[tuple[int, date], Counts] = {}
    hours: dict[tuple[int, date], list[int]] = {}
    for row in hour_rows:
        on = local_date_of(int(row["local_day"]))
        if not window.start <= on <= window.end:
            continue
        for chat in (int(row["chat_id"]), ALL_CHATS):
            counts[(chat, on)] = counts.get((chat, on), Counts()) + counts_of(row)
            by_hour = hours.setdefault((chat, on), [0] * HOURS)
            by_hour[int(row["hour"])] += int(row["received"] or 0) + int(row["sent"] or 0)
    users = {
        (int(row["chat_id"]), local_date_of(int(row["local_day"]))): int(row["users"])
        for row in user_rows
        if window.start <= local_date_of(int(row["local_day"])) <= window.end
    }
    keys = counts.keys() | users.keys() | {(ALL_CHATS, on) for on in window.days()}
    day_versions = {on: version_of(versions, utc_span) for on, utc_span in spans.items()}
    rows = [
        _Row(
            chat,
            on,
            counts.get((chat, on), Counts()),
            users.get((chat, on), 0),
            tuple(hours.get((chat, on), ())),
            day_versions[on],
        )
        for chat, on in sorted(keys)
    ]
    await store_rows(install_id, zone_name, rows)
    return rows


async def store_rows(install_id: str, zone_name: str, rows: list[_Row]) -> None:
    table = AnalyticsClosedDay._meta.db_table
    values = [
        [
            install_id,
            row.chat_id,
            zone_name,
            _ordinal(row.day),
            row.version,
            row.counts.received,
            row.counts.sent,
            row.counts.joins,
            row.counts.leaves,
            row.users,
            ",".join(str(n) for n in hours_of(row) or (0,) * HOURS),
        ]
        for row in rows
    ]
    update = ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS[4:])
    try:
        await insert_rows(
            AnalyticsClosedDay._meta.db,
            table,
            _COLUMNS,
            values,
            f"ON CONFLICT (install_id, chat_id, zone, day) DO UPDATE SET {update} "
            f"WHERE excluded.version >= {table}.version",
            types=("text", "bigint", "text", "int", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "text"),
        )
    except Exception as exc:
        log.warning("closed days of install %s not stored (rolled up again next time): %s", install_id, describe(exc))


async def bump(conn: BaseDBAsyncClient, days: Iterable[tuple[str, int]]) -> None:
    """Retires the roll-ups of these (install, UTC day) pairs, WHOLE_INSTALL for all of an
    install's (in the transaction of what changed them)."""
    table = AnalyticsVersion._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "day", "version"),
        [[install_id, day, 1] for install_id, day in sorted(set(days))],
        f"ON CONFLICT (install_id, day) DO UPDATE SET version = {table}.version + 1",
        types=("text", "int", "bigint"),
    )


async def prune(install_id: str, zone_name: str, keep_from: date) -> int:
    """Forgets closed days before `keep_from`, and those of other zones than the install's."""
    pruned = await AnalyticsClosedDay.filter(install_id=install_id, day__lt=_ordinal(keep_from)).delete()
    return pruned + await AnalyticsClosedDay.filter(install_id=install_id).exclude(zone=zone_name).delete()


def _scoped(rows: list[_Row], chat_id: int | None) -> ClosedDays:
    scope = ALL_CHATS if chat_id is None else chat_id
    closed = ClosedDays()
    for row in rows:
        if row.chat_id == scope and (row.counts.messages or row.counts.joins or row.counts.leaves or row.users):
            closed.days[row.day] = DayStat(row.day, row.counts, row.users)
            closed.hours[row.day] = hours_of(row)
        if row.chat_id != ALL_CHATS and (chat_id is None or row.chat_id == chat_id) and row.counts != Counts():
            closed.chat_counts.setdefault(row.day, {})[row.chat_id] = row.counts
    return closed


def hours_of(row: _Row) -> tuple[int, ...]:
    return row.hours if isinstance(row.hours, tuple) else tuple(map(int, row.hours.split(",")))


def _row(row: dict[str, Any]) -> _Row:
    day = local_date_of(int(row["day"]))
    return _Row(
        int(row["chat_id"]), day, counts_of(row), int(row["users"] or 0), str(row["hours"]), int(row["version"])
    )


def _ordinal(day: date) -> int:
    return (day - EPOCH).days
