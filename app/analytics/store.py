"""Writes of the analytics plugin: atomic upserts, run inside the plugin run's transaction, so an
event counts exactly once however many processes count the same chat at the same time."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics import closed_days, posting
from app.analytics.buckets import bucket_of
from app.analytics.counting import Tally
from app.analytics.models import ALL_CHATS, AnalyticsBucket, AnalyticsChat, AnalyticsSeen, AnalyticsUserDay
from app.analytics.zoned import QUARTERS, quarter_bits, range_bits
from app.sql import insert_rows, placeholders

_COUNTERS = ("received", "sent", "joins", "leaves")
_ONE_INSTALL = ("install_id",)  # a batch's rows are mostly one install's: its id travels once


def _add_counters(table: str) -> str:
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COUNTERS)


async def record(install_id: str, tally: Tally) -> None:
    """Adds one event's tally: chat totals, its bucket, and the user seen that day."""
    await record_many([(install_id, tally)])


async def record_many(tallies: list[tuple[str, Tally]]) -> None:
    """Adds many events' tallies, of any installs, in at most eight statements (nine with a late
    event): rows that meet the same counters are summed first (a multi-row upsert may touch each
    row once)."""
    if not tallies:
        return
    conn = AnalyticsChat._meta.db
    chats: dict[tuple[str, int], list[Any]] = {}
    buckets: dict[tuple[str, int, int], list[int]] = {}
    day_users: dict[tuple[str, int, int, int], list[int]] = {}
    seen: dict[tuple[str, int, int], int] = {}
    late: set[tuple[str, int]] = set()  # (install, UTC day) of events counted late (closed_days.is_late)
    for install_id, tally in tallies:
        counts = [tally.received, tally.sent, tally.joins, tally.leaves]
        chat = chats.setdefault((install_id, tally.chat_id), [None, None, 0, 0, 0, 0])
        chat[0] = tally.chat_title or chat[0]
        chat[1] = tally.chat_type or chat[1]
        _add(chat, 2, counts)
        bucket = bucket_of(tally.moment)
        _add(buckets.setdefault((install_id, tally.chat_id, bucket), [0, 0, 0, 0]), 0, counts)
        if tally.late:
            late.add((install_id, bucket // QUARTERS))
        if tally.user_id is not None:
            low, high = quarter_bits(bucket % QUARTERS)
            for scope in (tally.chat_id, ALL_CHATS):
                mask = day_users.setdefault((install_id, scope, bucket // QUARTERS, tally.user_id), [0, 0])
                mask[0] |= low
                mask[1] |= high
                key = (install_id, scope, tally.user_id)
                seen[key] = max(bucket, seen.get(key, bucket))
    table = AnalyticsChat._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "title", "type", *_COUNTERS),
        [[install_id, chat_id, *values] for (install_id, chat_id), values in chats.items()],
        f"ON CONFLICT (install_id, chat_id) DO UPDATE SET {_add_counters(table)}, "
        f"title = COALESCE(excluded.title, {table}.title), type = COALESCE(excluded.type, {table}.type)",
        types=("text", "bigint", "text", "text", "bigint", "bigint", "bigint", "bigint"),
        uniform=_ONE_INSTALL,
    )
    table = AnalyticsBucket._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "bucket", *_COUNTERS),
        [[*key, *values] for key, values in buckets.items()],
        f"ON CONFLICT (install_id, chat_id, bucket) DO UPDATE SET {_add_counters(table)}",
        types=("text", "bigint", "int", "int", "int", "int", "int"),
        uniform=_ONE_INSTALL,
    )
    if day_users:
        await _record_users(conn, day_users, seen)
    await posting.record(conn, tallies)  # content kinds and posters (app/analytics/posting.py)
    if late:
        await closed_days.bump(conn, late)


def _add(target: list[Any], start: int, counts: list[int]) -> None:
    for n, count in enumerate(counts):
        target[start + n] += count


async def _record_users(
    conn: BaseDBAsyncClient,
    day_users: dict[tuple[str, int, int, int], list[int]],
    seen: dict[tuple[str, int, int], int],
) -> None:
    """Users seen in a chat and in all chats: the quarters of each UTC day they were seen in are
    OR-ed into that day's row (exact however many processes count at once), and each user's last
    bucket moves forward. Rows that would not change are not written: most of a busy chat's
    messages come from users already seen in the same quarter."""
    table = AnalyticsUserDay._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "day", "user_id", "quarters_low", "quarters_high"),
        [[*key, *mask] for key, mask in day_users.items()],
        f"ON CONFLICT (install_id, chat_id, day, user_id) DO UPDATE SET "
        f"quarters_low = {table}.quarters_low | excluded.quarters_low, "
        f"quarters_high = {table}.quarters_high | excluded.quarters_high "
        # A row that already has these quarters is left as it is (no new row version to write).
        f"WHERE ({table}.quarters_low | excluded.quarters_low) <> {table}.quarters_low "
        f"OR ({table}.quarters_high | excluded.quarters_high) <> {table}.quarters_high",
        types=("text", "bigint", "int", "bigint", "bigint", "bigint"),
        uniform=_ONE_INSTALL,
    )
    table = AnalyticsSeen._meta.db_table
    await insert_rows(
        conn,
        table,
        ("install_id", "chat_id", "user_id", "last_bucket"),
        [[*key, bucket] for key, bucket in seen.items()],
        f"ON CONFLICT (install_id, chat_id, user_id) DO UPDATE SET last_bucket = excluded.last_bucket "
        f"WHERE excluded.last_bucket > {table}.last_bucket",
        types=("text", "bigint", "bigint", "int"),
        uniform=_ONE_INSTALL,
    )


async def prune(install_id: str, keep_from: int) -> int:
    """Forgets the buckets before bucket `keep_from` (a local midnight), the user rows of UTC days
    before it and the quarters of its own UTC day before it, and users not seen since; lifetime
    totals stay."""
    day, first = divmod(keep_from, QUARTERS)
    pruned = await AnalyticsBucket.filter(install_id=install_id, bucket__lt=keep_from).delete()
    pruned += await AnalyticsUserDay.filter(install_id=install_id, day__lt=day).delete()
    if first:
        low, high = range_bits(first, QUARTERS)
        conn = AnalyticsUserDay._meta.db
        marks = placeholders(conn, 4)
        await conn.execute_query(
            f'UPDATE "{AnalyticsUserDay._meta.db_table}" SET quarters_low = quarters_low & {marks[0]}, '
            f"quarters_high = quarters_high & {marks[1]} WHERE install_id = {marks[2]} AND day = {marks[3]}",
            [low, high, install_id, day],
        )
        pruned += await AnalyticsUserDay.filter(
            install_id=install_id, day=day, quarters_low=0, quarters_high=0
        ).delete()
    pruned += await AnalyticsSeen.filter(install_id=install_id, last_bucket__lt=keep_from).delete()
    return pruned + await posting.prune(install_id, keep_from)
