"""Writes of the analytics plugin: atomic upserts, run inside the plugin run's transaction, so an
event counts exactly once however many processes count the same chat at the same time."""

from __future__ import annotations

from datetime import date
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics import posting
from app.analytics.counting import Tally
from app.analytics.models import ALL_CHATS, AnalyticsChat, AnalyticsDay, AnalyticsDayUser, AnalyticsHour, AnalyticsUser
from app.analytics.spans import first_kept_bucket
from app.sql import insert_rows, is_postgres

_COUNTERS = ("received", "sent", "joins", "leaves")


def _day(conn: BaseDBAsyncClient, day: date) -> object:
    # asyncpg takes a date for a DATE column; tortoise keeps SQLite dates as ISO text.
    return day if is_postgres(conn) else day.isoformat()


def _add_counters(table: str) -> str:
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COUNTERS)


async def record(install_id: str, tally: Tally) -> None:
    """Adds one event's tally: chat totals, its hour, and the user seen that day."""
    await record_many([(install_id, tally)])


async def record_many(tallies: list[tuple[str, Tally]]) -> None:
    """Adds many events' tallies, of any installs, in at most nine statements: rows that meet
    the same counters are summed first (a multi-row upsert may touch each row once)."""
    if not tallies:
        return
    conn = AnalyticsChat._meta.db
    chats: dict[tuple[str, int], list[Any]] = {}
    hours: dict[tuple[str, int, object, int], list[int]] = {}
    day_users: dict[tuple[str, int, object, int], None] = {}
    seen: dict[tuple[str, int, int], object] = {}
    for install_id, tally in tallies:
        counts = [tally.received, tally.sent, tally.joins, tally.leaves]
        chat = chats.setdefault((install_id, tally.chat_id), [None, None, 0, 0, 0, 0])
        chat[0] = tally.chat_title or chat[0]
        chat[1] = tally.chat_type or chat[1]
        _add(chat, 2, counts)
        day = _day(conn, tally.moment.date())
        _add(hours.setdefault((install_id, tally.chat_id, day, tally.moment.hour), [0, 0, 0, 0]), 0, counts)
        if tally.user_id is not None:
            for scope in (tally.chat_id, ALL_CHATS):
                day_users[(install_id, scope, day, tally.user_id)] = None
                key = (install_id, scope, tally.user_id)
                if key not in seen or str(day) > str(seen[key]):
                    seen[key] = day
    table = AnalyticsChat._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "title", "type", *_COUNTERS),
        [[install_id, chat_id, *values] for (install_id, chat_id), values in chats.items()],
        f"ON CONFLICT (install_id, chat_id) DO UPDATE SET {_add_counters(table)}, "
        f"title = COALESCE(excluded.title, {table}.title), type = COALESCE(excluded.type, {table}.type)",
        types=("text", "bigint", "text", "text", "bigint", "bigint", "bigint", "bigint"),
    )
    table = AnalyticsHour._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "day", "hour", *_COUNTERS),
        [[*key, *values] for key, values in hours.items()],
        f"ON CONFLICT (install_id, chat_id, day, hour) DO UPDATE SET {_add_counters(table)}",
        types=("text", "bigint", "date", "smallint", "int", "int", "int", "int"),
    )
    if day_users:
        await _record_users(conn, list(day_users), seen)
    await posting.record(conn, tallies)  # content kinds and posters (app/analytics/posting.py)


def _add(target: list[Any], start: int, counts: list[int]) -> None:
    for n, count in enumerate(counts):
        target[start + n] += count


async def _record_users(
    conn: BaseDBAsyncClient, day_users: list[tuple[str, int, object, int]], seen: dict[tuple[str, int, int], object]
) -> None:
    """Users seen in a chat and in all chats on a day: the day's distinct count grows only where
    the (day, user) row is new, and each user's last day moves forward."""
    first_seen = await insert_rows(
        conn,
        AnalyticsDayUser._meta.db_table,
        ("install_id", "chat_id", "day", "user_id"),
        [list(row) for row in day_users],
        "ON CONFLICT (install_id, chat_id, day, user_id) DO NOTHING",
        returning="install_id, chat_id, day",
        types=("text", "bigint", "date", "bigint"),
    )
    if first_seen:
        new_users: dict[tuple[str, int, object], int] = {}
        for row in first_seen:
            key = (row["install_id"], row["chat_id"], row["day"])
            new_users[key] = new_users.get(key, 0) + 1
        days = AnalyticsDay._meta.db_table
        await insert_rows(
            conn,
            days,
            ("install_id", "chat_id", "day", "users"),
            [[*key, count] for key, count in new_users.items()],
            f"ON CONFLICT (install_id, chat_id, day) DO UPDATE SET users = {days}.users + excluded.users",
            types=("text", "bigint", "date", "int"),
        )
    table = AnalyticsUser._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "user_id", "last_day"),
        [[*key, day] for key, day in seen.items()],
        f"ON CONFLICT (install_id, chat_id, user_id) DO UPDATE SET last_day = "
        f"CASE WHEN excluded.last_day > {table}.last_day THEN excluded.last_day ELSE {table}.last_day END",
        types=("text", "bigint", "bigint", "date"),
    )


async def prune(install_id: str, keep_from: date) -> int:
    """Forgets per-hour and per-day figures and users not seen since `keep_from`; lifetime totals stay."""
    pruned = 0
    for model in (AnalyticsHour, AnalyticsDay, AnalyticsDayUser):
        pruned += await model.filter(install_id=install_id, day__lt=keep_from).delete()
    pruned += await AnalyticsUser.filter(install_id=install_id, last_day__lt=keep_from).delete()
    return pruned + await posting.prune(install_id, first_kept_bucket(keep_from))
