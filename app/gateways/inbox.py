"""The durable event inbox: an event is committed before it is acknowledged, then claimed,
processed and completed by whichever process gets it first."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise.expressions import F, Q

from app.gateways.models import EventKind, EventStatus, GatewayEvent
from app.ids import new_id
from app.sql import insert_rows

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Pending:
    gateway_id: str
    kind: EventKind
    key: str
    chat_id: int | None
    payload: str  # JSON text
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


_COLUMNS = ("gateway_id", "kind", "key", "chat_id", "payload", "status", "attempts", "received_at")


async def insert_events(batch: list[_Pending]) -> None:
    """One multi-row INSERT that skips events already there (same gateway, kind and key)."""
    conn = GatewayEvent._meta.db
    if conn.capabilities.dialect not in ("postgres", "sqlite"):
        rows = [GatewayEvent(gateway_id=p.gateway_id, kind=p.kind, key=p.key, chat_id=p.chat_id, payload=json.loads(p.payload)) for p in batch]
        await GatewayEvent.bulk_create(rows, ignore_conflicts=True)
        return
    now = utcnow()
    rows = [[p.gateway_id, p.kind.value, p.key, p.chat_id, p.payload, EventStatus.PENDING.value, 0, now] for p in batch]
    await insert_rows(conn, GatewayEvent._meta.db_table, _COLUMNS, rows, "ON CONFLICT DO NOTHING", jsonb={"payload"})


class InboxWriter:
    """Group commit: the events of concurrent requests are written in one transaction."""

    def __init__(self, max_batch: int = 500) -> None:
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.written = asyncio.Event()  # set after each commit; the dispatcher waits on it

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def put(
        self, gateway_id: str, kind: EventKind, key: str, payload: str | dict[str, Any], chat_id: int | None = None
    ) -> None:
        """Returns once the event is committed (a redelivered one is ignored)."""
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        pending = _Pending(gateway_id, kind, key, chat_id, text)
        self._queue.put_nowait(pending)
        await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await insert_events(batch)
            except Exception as exc:  # the requests answer 5xx and Telegram sends again
                log.exception("inbox write of %d events failed", len(batch))
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)
                continue
            for p in batch:
                if not p.done.done():
                    p.done.set_result(None)
            self.written.set()


async def claim(limit: int, lease_seconds: float) -> list[GatewayEvent]:
    """Takes up to `limit` events to process: pending ones, and ones whose worker's lease ran out."""
    now = utcnow()
    claimable = Q(status=EventStatus.PENDING) | Q(status=EventStatus.PROCESSING, lease_until__lt=now)
    ids = await GatewayEvent.filter(claimable).order_by("id").limit(limit).values_list("id", flat=True)
    if not ids:
        return []
    token = new_id()
    await GatewayEvent.filter(claimable, id__in=list(ids)).update(
        status=EventStatus.PROCESSING,
        claim=token,
        lease_until=now + timedelta(seconds=lease_seconds),
        attempts=F("attempts") + 1,
    )
    return await GatewayEvent.filter(claim=token).order_by("id")


async def complete(event: GatewayEvent) -> None:
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(
        status=EventStatus.DONE, processed_at=utcnow(), lease_until=None
    )


async def fail(event: GatewayEvent) -> None:
    """Gives up on an event that can never be processed (its payload does not parse)."""
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(status=EventStatus.FAILED, lease_until=None)


async def retry_later(event: GatewayEvent) -> None:
    """After a failure of our own (not a plugin's): the event stays claimed for a backoff of
    1, 2, 4, … seconds, then any process may claim it again; after MAX_ATTEMPTS it fails for good."""
    if event.attempts >= MAX_ATTEMPTS:
        await GatewayEvent.filter(id=event.id, claim=event.claim).update(status=EventStatus.FAILED, lease_until=None)
        return
    backoff = timedelta(seconds=2 ** (event.attempts - 1))
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(lease_until=utcnow() + backoff)


async def give_back(event: GatewayEvent) -> None:
    """Returns a claimed event that was never started (at shutdown), for any process to take now."""
    await GatewayEvent.filter(id=event.id, claim=event.claim).update(
        status=EventStatus.PENDING, lease_until=None, attempts=F("attempts") - 1
    )


async def prune(older_than: datetime) -> int:
    """Deletes finished events received before `older_than`; returns how many.

    Keep them longer than Telegram redelivers (24 hours): a redelivery is recognised by its row.
    """
    return await GatewayEvent.filter(
        status__in=[EventStatus.DONE, EventStatus.FAILED], received_at__lt=older_than
    ).delete()
