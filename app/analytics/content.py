"""Received messages by kind of content (app/telegram/content.py): per chat, bucket and kind, so a
window of any zone's days is a sum over its buckets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics.buckets import Span, bucket_of
from app.analytics.counting import Tally
from app.analytics.posting_models import AnalyticsContent
from app.analytics.reader import fetch_rows
from app.sql import insert_rows
from app.telegram.content import CONTENT_KINDS

TABLE = AnalyticsContent._meta.db_table


async def record(conn: BaseDBAsyncClient, tallies: Iterable[tuple[str, Tally]]) -> None:
    """Adds received messages to their (chat, bucket, kind) counts, in one statement."""
    counts: dict[tuple[str, int, int, str], int] = {}
    for install_id, tally in tallies:
        if tally.kind is not None and tally.received:
            key = (install_id, tally.chat_id, bucket_of(tally.moment), tally.kind)
            counts[key] = counts.get(key, 0) + tally.received
    if not counts:
        return
    await insert_rows(
        conn,
        TABLE,
        ("install_id", "chat_id", "bucket", "kind", "messages"),
        [[*key, count] for key, count in counts.items()],
        f"ON CONFLICT (install_id, chat_id, bucket, kind) DO UPDATE SET messages = {TABLE}.messages + excluded.messages",
        types=("text", "bigint", "bigint", "text", "int"),
    )


async def content_counts(
    install_id: str, chat_id: int | None, span: Span, gate: asyncio.Semaphore | None = None
) -> list[tuple[str, int]]:
    """Every kind with its received messages in `span` (0 for none), in CONTENT_KINDS' order."""
    scope, params = "install_id = ?", list[object]([install_id])
    if chat_id is not None:
        scope, params = f"{scope} AND chat_id = ?", [*params, chat_id]
    rows = await fetch_rows(
        f'SELECT kind, SUM(messages) AS n FROM "{TABLE}" WHERE {scope} AND bucket >= ? AND bucket < ? GROUP BY kind',
        [*params, span.first, span.end],
        gate,
    )
    found = {row["kind"]: int(row["n"] or 0) for row in rows}
    return [(kind, found.get(kind, 0)) for kind in CONTENT_KINDS]


async def prune(install_id: str, keep_from: int) -> int:
    """Forgets the buckets before bucket `keep_from`."""
    return await AnalyticsContent.filter(install_id=install_id, bucket__lt=keep_from).delete()
