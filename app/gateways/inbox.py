"""The durable inbox, for the workers that process it: events are claimed, processed and
completed (or failed, retried later, given back) by whichever process gets them first, and pruned
once done. They come in through app/gateways/inbox_writer.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F

from app.clock import utcnow
from app.gateways.models import EventKind, EventStatus, GatewayEvent, RejectedUpdate
from app.ids import new_id
from app.sql import is_postgres

MAX_ATTEMPTS = 5


@dataclass
class ClaimedEvent:
    """An event this process claimed: `claim` proves it still holds it when it records the outcome."""

    id: int
    gateway_id: str
    kind: EventKind
    key: str
    chat_id: int | None
    payload: dict[str, Any]
    attempts: int
    claim: str
    lease_until: datetime


_CLAIM = """
UPDATE gateway_events SET status = 'processing', claim = {token}, lease_until = {lease}, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM gateway_events
    WHERE status IN ('pending', 'processing') AND (status = 'pending' OR lease_until < {now})
    ORDER BY id LIMIT {limit}{lock}
)
RETURNING id, gateway_id, kind, key, chat_id, payload, attempts
"""


_CLAIMABLE = (
    "SELECT 1 FROM gateway_events WHERE status IN ('pending', 'processing') "
    "AND (status = 'pending' OR lease_until < ?) LIMIT 1"
)


async def claim(limit: int, lease_seconds: float) -> list[ClaimedEvent]:
    """Takes up to `limit` events to process, oldest first, in one statement: pending ones, and
    ones whose worker's lease ran out. On PostgreSQL, rows another process is claiming are
    skipped (`FOR UPDATE SKIP LOCKED`), so concurrent workers take disjoint batches at once;
    SQLite runs one writer at a time."""
    conn = GatewayEvent._meta.db
    now = utcnow()
    token, lease = new_id(), now + timedelta(seconds=lease_seconds)
    if is_postgres(conn):
        sql = _CLAIM.format(token="$1", lease="$2", now="$3", limit="$4", lock=" FOR UPDATE SKIP LOCKED")
    else:
        # SQLite has one writer at a time: an idle worker only reads, and takes the write lock
        # when there is something to claim.
        if not await conn.execute_query_dict(_CLAIMABLE, [now]):
            return []
        sql = _CLAIM.format(token="?", lease="?", now="?", limit="?", lock="")
    rows = await conn.execute_query_dict(sql, [token, lease, now, limit])
    events = [
        ClaimedEvent(
            id=row["id"],
            gateway_id=row["gateway_id"],
            kind=EventKind(row["kind"]),
            key=row["key"],
            chat_id=row["chat_id"],
            payload=_json(row["payload"]),
            attempts=row["attempts"],
            claim=token,
            lease_until=lease,
        )
        for row in rows
    ]
    events.sort(key=lambda event: event.id)
    return events


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


async def complete(event: ClaimedEvent) -> None:
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(
        status=EventStatus.DONE, processed_at=utcnow(), lease_until=None
    )


async def complete_all(events: Sequence[ClaimedEvent], now: datetime) -> None:
    """Marks the events done, if this process still holds them: one statement per claim (call it in
    the transaction that records their runs)."""
    by_claim: dict[str, list[int]] = {}
    for event in events:
        by_claim.setdefault(event.claim, []).append(event.id)
    conn = GatewayEvent._meta.db
    for claim, ids in by_claim.items():
        if is_postgres(conn):
            await conn.execute_query(
                "UPDATE gateway_events SET status = 'done', processed_at = $1, lease_until = NULL "
                "WHERE id = ANY($2::bigint[]) AND claim = $3",
                [now, ids, claim],
            )
        else:
            await GatewayEvent.filter(id__in=ids, claim=claim).update(
                status=EventStatus.DONE, processed_at=now, lease_until=None
            )


async def fail(event: ClaimedEvent) -> None:
    """Gives up on an event that can never be processed (its payload does not parse)."""
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(status=EventStatus.FAILED, lease_until=None)


async def retry_later(event: ClaimedEvent) -> None:
    """After a failure of our own (not a plugin's): the event stays claimed for a backoff of
    1, 2, 4, … seconds, then any process may claim it again; after MAX_ATTEMPTS it fails for good."""
    if event.attempts >= MAX_ATTEMPTS:
        await GatewayEvent.filter(id=event.id, claim=event.claim).update(status=EventStatus.FAILED, lease_until=None)
        return
    backoff = timedelta(seconds=2 ** (event.attempts - 1))
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(lease_until=utcnow() + backoff)


async def give_back(event: ClaimedEvent) -> None:
    """Returns a claimed event that was never started (at shutdown), for any process to take now."""
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(
        status=EventStatus.PENDING, lease_until=None, attempts=F("attempts") - 1
    )


async def prune(older_than: datetime) -> int:
    """Deletes finished events and rejected updates received before `older_than`; returns how many.

    Keep them longer than Telegram redelivers (24 hours): a redelivery is recognised by its row.
    """
    events = await GatewayEvent.filter(
        status__in=[EventStatus.DONE, EventStatus.FAILED], received_at__lt=older_than
    ).delete()
    return events + await RejectedUpdate.filter(received_at__lt=older_than).delete()
