"""Member counts' rows: each chat's state (last read, unavailable since) and its readings, written
in the plugin run's transaction; which chats are due a reading; pruning by retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from app.analytics.models import AnalyticsChat, AnalyticsMemberChat, AnalyticsMemberCount
from app.batched_loads import BatchedLoads
from app.db_errors import said_as_database_failure
from app.sql import insert_rows


@dataclass(frozen=True)
class ChatState:
    """What a run learnt of a chat: a reading (`count`), that it cannot be read (`unavailable`, a
    reason, since `at`), that the bot is in it again (`available`), or only that it exists.
    `due`: the chat wants a reading soon (True), was just tried (False: a failed reading waits for
    the daily schedule), or neither (None); a reading or a refusal settles it."""

    chat_id: int
    gateway_id: str | None
    title: str | None
    at: datetime
    count: int | None = None
    unavailable: str | None = None
    available: bool = False
    due: bool | None = None


@dataclass(frozen=True)
class DueChat:
    chat_id: int
    gateway_id: str | None
    title: str | None


class KnownChats:
    """Chats an analytics handler knows a member-chat row exists for (or was written for): a
    chat's first message reads its count, and later messages cost no query. One per handler, so
    per platform; bounded, and a lost entry costs one query. The chats asked about at the same
    moment (a burst of first messages, one per lane) are looked up in one query."""

    MAX = 100_000

    def __init__(self) -> None:
        self._known: set[tuple[str, int]] = set()
        self._rows: BatchedLoads[tuple[str, int], bool] = BatchedLoads(_have_rows)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._known

    def add(self, install_id: str, chat_id: int) -> None:
        if len(self._known) >= self.MAX:
            self._known.clear()
        self._known.add((install_id, chat_id))

    async def check(self, install_id: str, chat_id: int) -> bool:
        """Whether the chat has a member-chat row (its count was read, or tried). A database that
        cannot be reached fails the check as the database's failure (DBConnectionError), so that the
        run is tried again once it is back rather than recorded as the plugin's own failure."""
        if (install_id, chat_id) in self._known:
            return True
        async with said_as_database_failure("member chats unreadable"):
            found = await self._rows.load((install_id, chat_id))
        if found:
            self.add(install_id, chat_id)
        return found


async def _have_rows(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], bool]:
    """Which of these (install, chat) pairs have a member-chat row."""
    rows = await AnalyticsMemberChat.filter(
        install_id__in=list({install for install, _ in keys}), chat_id__in=list({chat for _, chat in keys})
    ).values_list("install_id", "chat_id")
    found = set(cast("list[tuple[str, int]]", rows))
    return {key: key in found for key in keys}


_COLUMNS = (
    "install_id",
    "chat_id",
    "gateway_id",
    "title",
    "last_read_at",
    "unavailable_reason",
    "unavailable_since",
    "due_at",
)


def _kept(table: str) -> str:
    return (
        f"gateway_id = COALESCE(excluded.gateway_id, {table}.gateway_id), "
        f"title = COALESCE(excluded.title, {table}.title)"
    )


async def record_states(states: list[tuple[str, ChatState]]) -> None:
    """Writes what runs learnt of chats (a BatchedWrite's apply), one statement per state: a
    reading or the bot back in the chat makes it available again; a refusal makes it unavailable
    from the first time it was seen so."""
    conn = AnalyticsMemberChat._meta.db
    table = AnalyticsMemberChat._meta.db_table
    readings = []
    for install_id, state in states:
        row: list[object] = [install_id, state.chat_id, state.gateway_id, state.title, None, None, None, None]
        if state.unavailable is not None:
            row[5], row[6] = state.unavailable[:300], state.at
            update = (
                f"{_kept(table)}, unavailable_reason = excluded.unavailable_reason, unavailable_since = "
                f"COALESCE({table}.unavailable_since, excluded.unavailable_since)"
            )
        elif state.count is not None or state.available:
            row[4] = state.at if state.count is not None else None
            update = (
                f"{_kept(table)}, last_read_at = COALESCE(excluded.last_read_at, {table}.last_read_at), "
                "unavailable_reason = NULL, unavailable_since = NULL"
            )
        else:
            update = _kept(table)
        if state.due:
            row[7] = state.at
            update += f", due_at = COALESCE({table}.due_at, excluded.due_at)"
        elif state.due is False or state.count is not None or state.unavailable is not None:
            update += ", due_at = NULL"
        await insert_rows(conn, table, _COLUMNS, [row], f"ON CONFLICT (install_id, chat_id) DO UPDATE SET {update}")
        if state.count is not None or state.unavailable is not None:  # a count, or the gap's start
            readings.append([install_id, state.chat_id, state.at, state.count])
    if readings:
        await insert_rows(
            conn, AnalyticsMemberCount._meta.db_table, ("install_id", "chat_id", "read_at", "count"), readings, ""
        )


async def installs_due() -> list[str]:
    """The installs with a chat that wants a reading soon."""
    query = AnalyticsMemberChat.filter(due_at__isnull=False, unavailable_since__isnull=True)
    return cast("list[str]", await query.distinct().values_list("install_id", flat=True))


async def chats_due_soon(install_id: str, limit: int) -> list[DueChat]:
    """Up to `limit` of the install's chats that want a reading soon, the longest waiting first."""
    query = AnalyticsMemberChat.filter(install_id=install_id, due_at__isnull=False, unavailable_since__isnull=True)
    rows = await query.order_by("due_at", "chat_id").limit(limit).values_list("chat_id", "gateway_id", "title")
    return [DueChat(chat_id, gateway_id, title) for chat_id, gateway_id, title in rows]


async def due_chats(install_id: str, read_before: datetime, limit: int) -> list[DueChat]:
    """Up to `limit` chats to read now: never-read ones first, then available ones not read since
    `read_before`, oldest reading first, then chats counted before member counts existed (no
    member-chat row yet, so no gateway known)."""
    available = AnalyticsMemberChat.filter(install_id=install_id, unavailable_since__isnull=True)
    fields = ("chat_id", "gateway_id", "title")
    rows = list(await available.filter(last_read_at__isnull=True).order_by("chat_id").limit(limit).values_list(*fields))
    if len(rows) < limit:
        stale = available.filter(last_read_at__lt=read_before).order_by("last_read_at", "chat_id")
        rows += await stale.limit(limit - len(rows)).values_list(*fields)
    chats = [DueChat(chat_id, gateway_id, title) for chat_id, gateway_id, title in rows]
    if len(chats) < limit:
        tracked = set(await AnalyticsMemberChat.filter(install_id=install_id).values_list("chat_id", flat=True))
        seen = (
            await AnalyticsChat.filter(install_id=install_id)
            .order_by("chat_id")
            .values_list("chat_id", "title", "type")
        )
        untracked = [
            DueChat(chat_id, None, title)
            for chat_id, title, kind in seen
            if chat_id not in tracked and kind != "private"
        ]
        chats += untracked[: limit - len(chats)]
    return chats


async def prune(install_id: str, keep_from: datetime) -> int:
    """Forgets readings before `keep_from`, but each chat's last one before it: the series of a
    window that starts at `keep_from` carries it forward."""
    pruned = 0
    old = await AnalyticsMemberCount.filter(install_id=install_id, read_at__lt=keep_from).values_list(
        "chat_id", "read_at"
    )
    newest: dict[int, datetime] = {}
    for chat_id, read_at in old:
        if chat_id not in newest or read_at > newest[chat_id]:
            newest[chat_id] = read_at
    for chat_id, read_at in newest.items():
        pruned += await AnalyticsMemberCount.filter(
            install_id=install_id, chat_id=chat_id, read_at__lt=read_at
        ).delete()
    return pruned
