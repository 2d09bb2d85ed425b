"""Taking events into the durable inbox: an event is committed before it is acknowledged, many
requests' events in one transaction (a group commit).

An event the database refuses for what it holds never fails the events committed with it: the
group is split until the refused rows are found, the rest is committed, and each caller hears of
its own row (`RowRefused`). When the database is unavailable, every caller not yet committed
hears `InboxUnavailable`. An update that can never be stored is kept in rejected_updates instead
(`reject`). Workers take the events out again through app/gateways/inbox.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from app.batching import CommitThread, Failures, GroupCommit
from app.clock import utcnow
from app.db_errors import describe, is_unavailable, refusal, safe_text
from app.gateways.models import EventKind, EventStatus, GatewayEvent, RejectedUpdate
from app.sql import insert_rows
from app.sqlite import insert_all

log = logging.getLogger("app.gateways.inbox")  # the inbox's lines, as before the writer had a module of its own


class RowRefused(Exception):
    """The database refused this event for what it holds: it can never be stored as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InboxUnavailable(Exception):
    """The event was not stored, and may be on a later try (the database is unavailable or failing)."""


@dataclass(slots=True)
class _Event:
    gateway_id: str
    kind: EventKind
    key: str
    chat_id: int | None
    payload: str  # JSON text

    def row(self) -> tuple[str, str, str, int | None, str]:
        return (self.gateway_id, self.kind.value, self.key, self.chat_id, self.payload)


# The columns that vary by event; the rest is the same for every row of a group.
_COLUMNS = ("gateway_id", "kind", "key", "chat_id", "payload")
_TYPES = ("text", "text", "text", "bigint", "jsonb")


def _every_row() -> dict[str, object]:
    """The columns with one value for every row of a group."""
    return {"status": EventStatus.PENDING.value, "attempts": 0, "received_at": utcnow()}


async def insert_events(group: list[_Event]) -> list[None]:
    """One INSERT of every row that skips events already there (same gateway, kind and key)."""
    await insert_rows(
        GatewayEvent._meta.db,
        GatewayEvent._meta.db_table,
        _COLUMNS,
        [event.row() for event in group],
        "ON CONFLICT DO NOTHING",
        types=_TYPES,
        constants=_every_row(),
    )
    return [None] * len(group)


def insert_events_here(connection: sqlite3.Connection, group: list[_Event]) -> list[None]:
    """insert_events on the writer's own SQLite connection (app.batching.CommitThread)."""
    insert_all(
        connection,
        GatewayEvent._meta.db_table,
        _COLUMNS,
        [event.row() for event in group],
        "ON CONFLICT DO NOTHING",
        constants=_every_row(),
    )
    return [None] * len(group)


def _unavailable(exc: Exception, count: int) -> InboxUnavailable:
    # The requests answer 503 and Telegram sends them again. No traceback: it could carry rows.
    if is_unavailable(exc):
        log.warning("inbox write of %d events failed, database unavailable: %s", count, describe(exc))
    else:
        log.error("inbox write of %d events failed: %s", count, describe(exc))
    return InboxUnavailable(describe(exc))


def _refused(exc: Exception) -> RowRefused | None:
    reason = refusal(exc)
    return None if reason is None else RowRefused(reason)


_FAILURES = Failures(
    refused=_refused, unavailable=_unavailable, stopping=lambda: InboxUnavailable("the inbox is stopping")
)


class InboxWriter:
    """Group commit (app.batching): the events of concurrent requests are written in one transaction.

    On a SQLite file, a thread of the writer's own takes every event queued each time it is free
    and commits them at once, in the order they came, without waiting for the event loop in between
    (app.batching.CommitThread). On PostgreSQL a task takes them, with up to `max_in_flight` groups
    being written at once on pooled connections, so that the next group is under way while one
    commits.
    """

    def __init__(self, max_batch: int = 500, max_in_flight: int = 2) -> None:
        self.max_batch = max_batch
        self.group: GroupCommit[_Event, None] = GroupCommit(
            "inbox-writer", insert_events, _FAILURES, max_batch, max_in_flight
        )
        self.written = asyncio.Event()  # set after each commit; the dispatcher waits on it
        self.on_commit = self.group.on_commit  # called after each commit (to wake other processes)
        self.on_commit.append(self.written.set)

    def start(self) -> None:
        """Starts writing, with the database bound (app.db.Database.bound)."""
        client = GatewayEvent._meta.db
        filename = CommitThread.file_of(client)
        if filename is None:
            self.group.start()
        else:
            pragmas = getattr(client, "pragmas", {})  # tortoise's SQLite client has them
            self.group.start(CommitThread(filename, pragmas, self.max_batch), insert_events_here)

    async def stop(self) -> None:
        """Stops writing; whoever still waits hears InboxUnavailable (a webhook answers 503)."""
        await self.group.stop()

    async def put(
        self, gateway_id: str, kind: EventKind, key: str, payload: str | dict[str, Any], chat_id: int | None = None
    ) -> None:
        """Returns once the event is committed (a redelivered one is ignored)."""
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        await self.group.put(_Event(gateway_id, kind, key, chat_id, text))


async def reject(gateway_id: str, update_id: str | None, reason: str, body: bytes) -> None:
    """Records an update that will never be stored as an event, with the body as received."""
    await RejectedUpdate.create(gateway_id=gateway_id, update_id=update_id, reason=safe_text(reason, 255), body=body)
    log.warning(
        "update %s of gateway %s rejected, kept in rejected_updates (%d bytes): %s",
        safe_text(update_id or "-", 40),
        gateway_id,
        len(body),
        safe_text(reason),
    )
