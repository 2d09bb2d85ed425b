"""Writes of the analytics plugin: atomic upserts, run inside the plugin run's transaction, so an
event counts exactly once however many processes count the same chat at the same time."""

from __future__ import annotations

from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics.counting import Tally
from app.analytics.models import ALL_CHATS, AnalyticsChat, AnalyticsDay, AnalyticsDayUser, AnalyticsHour, AnalyticsUser
from app.sql import insert_rows

_COUNTERS = ("received", "sent", "joins", "leaves")


def _day(conn: BaseDBAsyncClient, day: date) -> object:
    # asyncpg takes a date for a DATE column; tortoise keeps SQLite dates as ISO text.
    return day if conn.capabilities.dialect == "postgres" else day.isoformat()


def _add_counters(table: str) -> str:
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COUNTERS)


async def record(install_id: str, tally: Tally) -> None:
    """Adds one event's tally: chat totals, its hour, and the user seen that day."""
    conn = AnalyticsChat._meta.db
    counts = [tally.received, tally.sent, tally.joins, tally.leaves]
    chats = AnalyticsChat._meta.db_table
    await insert_rows(
        conn,
        chats,
        ("install_id", "chat_id", "title", "type", *_COUNTERS),
        [[install_id, tally.chat_id, tally.chat_title, tally.chat_type, *counts]],
        f"ON CONFLICT (install_id, chat_id) DO UPDATE SET {_add_counters(chats)}, "
        f"title = COALESCE(excluded.title, {chats}.title), type = COALESCE(excluded.type, {chats}.type)",
    )
    day = _day(conn, tally.moment.date())
    hours = AnalyticsHour._meta.db_table
    await insert_rows(
        conn,
        hours,
        ("install_id", "chat_id", "day", "hour", *_COUNTERS),
        [[install_id, tally.chat_id, day, tally.moment.hour, *counts]],
        f"ON CONFLICT (install_id, chat_id, day, hour) DO UPDATE SET {_add_counters(hours)}",
    )
    if tally.user_id is not None:
        await _record_user(conn, install_id, tally.chat_id, day, tally.user_id)


async def _record_user(conn: BaseDBAsyncClient, install_id: str, chat_id: int, day: object, user_id: int) -> None:
    """The user seen in the chat and in all chats that day: the day's distinct count grows only
    where the (day, user) row is new, and the user's last day moves forward."""
    scopes = [chat_id, ALL_CHATS]
    first_seen = await insert_rows(
        conn,
        AnalyticsDayUser._meta.db_table,
        ("install_id", "chat_id", "day", "user_id"),
        [[install_id, scope, day, user_id] for scope in scopes],
        "ON CONFLICT (install_id, chat_id, day, user_id) DO NOTHING",
        returning="chat_id",
    )
    if first_seen:
        days = AnalyticsDay._meta.db_table
        await insert_rows(
            conn,
            days,
            ("install_id", "chat_id", "day", "users"),
            [[install_id, row["chat_id"], day, 1] for row in first_seen],
            f"ON CONFLICT (install_id, chat_id, day) DO UPDATE SET users = {days}.users + excluded.users",
        )
    seen = AnalyticsUser._meta.db_table
    await insert_rows(
        conn,
        seen,
        ("install_id", "chat_id", "user_id", "last_day"),
        [[install_id, scope, user_id, day] for scope in scopes],
        f"ON CONFLICT (install_id, chat_id, user_id) DO UPDATE SET last_day = "
        f"CASE WHEN excluded.last_day > {seen}.last_day THEN excluded.last_day ELSE {seen}.last_day END",
    )


async def prune(install_id: str, keep_from: date) -> int:
    """Forgets per-hour and per-day figures and users not seen since `keep_from`; lifetime totals stay."""
    pruned = 0
    for model in (AnalyticsHour, AnalyticsDay, AnalyticsDayUser):
        pruned += await model.filter(install_id=install_id, day__lt=keep_from).delete()
    pruned += await AnalyticsUser.filter(install_id=install_id, last_day__lt=keep_from).delete()
    return pruned
