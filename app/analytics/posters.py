"""Top posters: users by received messages in any window of buckets, with their names as last seen.

Exact for any window, and a read costs what the window's posters are, never its messages:
- per (chat, user, UTC day) counts answer a window's whole UTC days: one row per poster-day,
  where per-bucket rows alone would be up to 96 a day;
- per (chat, user, bucket) counts answer only the partial UTC days at the window's two ends, which
  a zone not on UTC always has (a Delhi day is 18:30 to 18:30 UTC). At most two days of them.
So a read sums at most (posters × whole days) + (posters × 2 days' buckets) rows in one statement,
and a write adds to one row of each. Names are one row per (install, user): the latest message by
its date decides, so a late or redelivered update never brings an old name back.
Only counted users (app/analytics/counting.py) are posters, and only with trackUsers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics.buckets import BUCKET_SECONDS, Span, bucket_of
from app.analytics.counting import Tally
from app.analytics.posting_models import AnalyticsPosterBucket, AnalyticsPosterDay, AnalyticsPosterName
from app.analytics.reader import fetch_rows
from app.plugins.models import UserPlugin
from app.sql import insert_rows

BUCKETS_PER_DAY = 86_400 // BUCKET_SECONDS
MAX_POSTERS = 50
DAYS = AnalyticsPosterDay._meta.db_table
BUCKETS = AnalyticsPosterBucket._meta.db_table
NAMES = AnalyticsPosterName._meta.db_table


@dataclass(frozen=True)
class Poster:
    user_id: int
    first_name: str | None
    username: str | None
    messages: int


async def record(conn: BaseDBAsyncClient, tallies: Iterable[tuple[str, Tally]]) -> None:
    """Adds counted users' received messages to their day and bucket, and their latest names."""
    days: dict[tuple[str, int, int, int], int] = {}
    buckets: dict[tuple[str, int, int, int], int] = {}
    names: dict[tuple[str, int], tuple[str, str | None, int]] = {}
    for install_id, tally in tallies:
        if tally.user_id is None or not tally.received:
            continue
        bucket = bucket_of(tally.moment)
        for found, key in (
            (days, (install_id, tally.chat_id, tally.user_id, bucket // BUCKETS_PER_DAY)),
            (buckets, (install_id, tally.chat_id, tally.user_id, bucket)),
        ):
            found[key] = found.get(key, 0) + tally.received
        if tally.first_name is not None:
            seen = int(tally.moment.timestamp())
            held = names.get((install_id, tally.user_id))
            if held is None or seen >= held[2]:
                names[(install_id, tally.user_id)] = (tally.first_name, tally.username, seen)
    if not days:
        return
    for table, column, rows in ((DAYS, "day", days), (BUCKETS, "bucket", buckets)):
        await insert_rows(
            conn,
            table,
            ("install_id", "chat_id", "user_id", column, "messages"),
            [[*key, count] for key, count in rows.items()],
            f"ON CONFLICT (install_id, chat_id, user_id, {column}) "
            f"DO UPDATE SET messages = {table}.messages + excluded.messages",
            types=("text", "bigint", "bigint", "int" if column == "day" else "bigint", "int"),
        )
    if names:
        newer = f"excluded.seen_at >= {NAMES}.seen_at"
        await insert_rows(
            conn,
            NAMES,
            ("install_id", "user_id", "first_name", "username", "seen_at"),
            [[*key, *value] for key, value in names.items()],
            f"ON CONFLICT (install_id, user_id) DO UPDATE SET "
            f"first_name = CASE WHEN {newer} THEN excluded.first_name ELSE {NAMES}.first_name END, "
            f"username = CASE WHEN {newer} THEN excluded.username ELSE {NAMES}.username END, "
            f"seen_at = CASE WHEN {newer} THEN excluded.seen_at ELSE {NAMES}.seen_at END",
            types=("text", "bigint", "text", "text", "bigint"),
        )


def split(span: Span) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """The span's whole UTC days (first, end), and the buckets before and after them."""
    first_day = -(-span.first // BUCKETS_PER_DAY)
    end_day = span.end // BUCKETS_PER_DAY
    if first_day >= end_day:  # no whole UTC day in it
        return (0, 0), (span.first, max(span.first, span.end)), (0, 0)
    return (first_day, end_day), (span.first, first_day * BUCKETS_PER_DAY), (end_day * BUCKETS_PER_DAY, span.end)


async def top_posters(
    install_id: str, chat_id: int | None, span: Span, limit: int, gate: asyncio.Semaphore | None = None
) -> list[Poster]:
    """The `limit` users with the most received messages in `span`; ties by user id. Empty while the
    install's trackUsers is off (what it kept before stays until retention drops it)."""
    if not await tracks_users(install_id, gate):
        return []
    scope, params = "install_id = ?", list[object]([install_id])
    if chat_id is not None:
        scope, params = f"{scope} AND chat_id = ?", [*params, chat_id]
    days, before, after = split(span)
    rows = await fetch_rows(
        "SELECT t.user_id, t.messages, n.first_name, n.username FROM ("
        "SELECT user_id, SUM(messages) AS messages FROM ("
        f'SELECT user_id, messages FROM "{DAYS}" WHERE {scope} AND day >= ? AND day < ? UNION ALL '
        f'SELECT user_id, messages FROM "{BUCKETS}" WHERE {scope} '
        "AND ((bucket >= ? AND bucket < ?) OR (bucket >= ? AND bucket < ?))"
        ") AS u GROUP BY user_id ORDER BY messages DESC, user_id LIMIT ?"
        f') AS t LEFT JOIN "{NAMES}" AS n ON n.install_id = ? AND n.user_id = t.user_id '
        "ORDER BY t.messages DESC, t.user_id",
        [*params, *days, *params, *before, *after, limit, install_id],
        gate,
    )
    return [Poster(int(row["user_id"]), row["first_name"], row["username"], int(row["messages"])) for row in rows]


async def tracks_users(install_id: str, gate: asyncio.Semaphore | None = None) -> bool:
    query = UserPlugin.filter(id=install_id).values_list("config", flat=True)
    async with gate or contextlib.nullcontext():
        configs = cast("list[Any]", await query)  # tortoise types a flat values_list as tuples
    return any(bool(config.get("trackUsers", True)) for config in configs if isinstance(config, dict))


async def prune(install_id: str, keep_from: int) -> int:
    """Forgets counts before bucket `keep_from` (the days wholly before it), and the names of users
    not seen since."""
    pruned = await AnalyticsPosterDay.filter(install_id=install_id, day__lt=keep_from // BUCKETS_PER_DAY).delete()
    pruned += await AnalyticsPosterBucket.filter(install_id=install_id, bucket__lt=keep_from).delete()
    since = keep_from * BUCKET_SECONDS
    pruned += await AnalyticsPosterName.filter(install_id=install_id, seen_at__lt=since).delete()
    return pruned
