"""Member counts as a summary shows them: the series of a window of local days in any zone, from
the readings' instants (three statements, O(chats + readings in the window)), for one install or
for many in the same three."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from app.analytics.buckets import local_midnight
from app.analytics.member_rules import MemberSeries, member_series
from app.analytics.models import AnalyticsMemberChat, AnalyticsMemberCount
from app.analytics.reader import AnalyticsReader, Window
from app.sql import is_postgres, placeholders, sqlite_value


@dataclass(frozen=True)
class UnavailableChat:
    chat_id: int
    title: str | None
    reason: str
    since: datetime


@dataclass(frozen=True)
class MemberFigures:
    series: MemberSeries
    unavailable: list[UnavailableChat]


async def read_members(reader: AnalyticsReader, window: Window) -> MemberFigures:
    """The member counts of `reader`'s install (one chat, or all) over `window`'s days in the
    reader's zone, once its gate lets it."""
    async with reader.gate if reader.gate is not None else contextlib.nullcontext():
        return await member_figures(reader.install_id, reader.chat_id, window.start, window.end, reader.zone)


async def member_figures(install_id: str, chat_id: int | None, start: date, end: date, zone: ZoneInfo) -> MemberFigures:
    """The member counts of the local days `start` to `end` in `zone` (one chat, or all)."""
    return (await member_figures_of([install_id], chat_id, start, end, zone))[install_id]


async def member_figures_of(
    install_ids: Sequence[str], chat_id: int | None, start: date, end: date, zone: ZoneInfo
) -> dict[str, MemberFigures]:
    """`member_figures` of each of these installs (distinct), in the same three statements."""
    begins = local_midnight(start, zone)
    days = [
        (start + timedelta(days=n), local_midnight(start + timedelta(days=n + 1), zone))
        for n in range((end - start).days + 1)
    ]
    ends = days[-1][1]
    installs = list(install_ids)
    chats = AnalyticsMemberChat.filter(install_id__in=installs)
    counts = AnalyticsMemberCount.filter(install_id__in=installs, read_at__gte=begins, read_at__lt=ends)
    if chat_id is not None:
        chats, counts = chats.filter(chat_id=chat_id), counts.filter(chat_id=chat_id)
    readings: dict[str, dict[int, list[tuple[datetime, int | None]]]] = {install: {} for install in installs}
    for install, chat, read_at, count in await counts.order_by("read_at", "id").values_list(
        "install_id", "chat_id", "read_at", "count"
    ):
        readings[install].setdefault(chat, []).append((read_at, count))
    gone: dict[str, dict[int, datetime]] = {install: {} for install in installs}
    unavailable: dict[str, list[UnavailableChat]] = {install: [] for install in installs}
    for install, chat, title, reason, since in (
        await chats.filter(unavailable_since__isnull=False)
        .order_by("-unavailable_since", "chat_id")
        .values_list("install_id", "chat_id", "title", "unavailable_reason", "unavailable_since")
    ):
        gone[install][chat] = since
        unavailable[install].append(UnavailableChat(chat, title, reason or "", since))
    before = await _counts_before(installs, chat_id, begins)
    return {
        install: MemberFigures(
            member_series(readings[install], before[install], gone[install], days), unavailable[install]
        )
        for install in installs
    }


async def last_counts(install_id: str, chat_ids: list[int]) -> dict[int, int]:
    """The last count read of each of the chats the bot can still read (two statements)."""
    if not chat_ids:
        return {}
    query = AnalyticsMemberChat.filter(install_id=install_id, chat_id__in=chat_ids, unavailable_since__isnull=False)
    gone = set(cast("list[int]", await query.values_list("chat_id", flat=True)))
    found = (await _counts_before([install_id], None, None, chat_ids))[install_id]
    return {chat: count for chat, count in found.items() if chat not in gone and count is not None}


async def _counts_before(
    install_ids: list[str], chat_id: int | None, moment: datetime | None, chat_ids: list[int] | None = None
) -> dict[str, dict[int, int | None]]:
    """Each install's chats' last count read before `moment` (None: ever), of one chat, of
    `chat_ids`, or of all."""
    conn = AnalyticsMemberCount._meta.db
    table = AnalyticsMemberCount._meta.db_table
    conditions: list[tuple[str, list[object]]] = [
        ("install_id IN (" + ", ".join(["{}"] * len(install_ids)) + ")", list(install_ids))
    ]
    if moment is not None:
        conditions.append(("read_at < {}", [moment if is_postgres(conn) else sqlite_value(moment)]))
    if chat_id is not None:
        conditions.append(("chat_id = {}", [chat_id]))
    if chat_ids is not None:
        conditions.append(("chat_id IN (" + ", ".join(["{}"] * len(chat_ids)) + ")", list(chat_ids)))
    params = [value for _, values in conditions for value in values]
    marks = placeholders(conn, len(params))
    where = " AND ".join(text for text, _ in conditions).format(*marks)
    sql = (
        f"SELECT install_id, chat_id, count FROM (SELECT install_id, chat_id, count, ROW_NUMBER() OVER "
        f"(PARTITION BY install_id, chat_id ORDER BY read_at DESC, id DESC) AS n FROM {table} "
        f"WHERE {where}) AS last WHERE n = 1"
    )
    found: dict[str, dict[int, int | None]] = {install: {} for install in install_ids}
    for row in await conn.execute_query_dict(sql, params):
        found[row["install_id"]][row["chat_id"]] = row["count"]
    return found
