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
import functools
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.clock import utcnow
from app.db_errors import describe, is_unavailable, refusal, safe_text
from app.gateways.models import EventKind, EventStatus, GatewayEvent, RejectedUpdate
from app.sql import insert_rows
from app.sqlite import GroupCommit, insert_all

log = logging.getLogger("app.gateways.inbox")  # the inbox's lines, as before the writer had a module of its own


class RowRefused(Exception):
    """The database refused this event for what it holds: it can never be stored as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InboxUnavailable(Exception):
    """The event was not stored, and may be on a later try (the database is unavailable or failing)."""


@dataclass(slots=True)
class _Pending:
    gateway_id: str
    kind: EventKind
    key: str
    chat_id: int | None
    payload: str  # JSON text
    done: asyncio.Future[None]


_COLUMNS = ("gateway_id", "kind", "key", "chat_id", "payload", "status", "attempts", "received_at")
_PENDING = EventStatus.PENDING.value


async def insert_events(batch: list[_Pending]) -> None:
    """One INSERT of every row that skips events already there (same gateway, kind and key)."""
    conn = GatewayEvent._meta.db
    if conn.capabilities.dialect == "postgres":
        columns = [[p.gateway_id for p in batch], [p.kind.value for p in batch], [p.key for p in batch],
                   [p.chat_id for p in batch], [p.payload for p in batch]]
        await conn.execute_query(_postgres_insert(), [*columns, utcnow()])
    elif conn.capabilities.dialect == "sqlite":
        now = utcnow()
        rows = [[p.gateway_id, p.kind.value, p.key, p.chat_id, p.payload, _PENDING, 0, now] for p in batch]
        await insert_rows(conn, GatewayEvent._meta.db_table, _COLUMNS, rows, "ON CONFLICT DO NOTHING")
    else:
        models = [
            GatewayEvent(gateway_id=p.gateway_id, kind=p.kind, key=p.key, chat_id=p.chat_id, payload=json.loads(p.payload))
            for p in batch
        ]
        await GatewayEvent.bulk_create(models, ignore_conflicts=True)


# On the hot path of ingest, written out: one array per column that varies (one statement text for
# any number of rows, parsed once per connection), the rest constants or one parameter.
@functools.cache
def _postgres_insert() -> str:
    return (
        f'INSERT INTO "{GatewayEvent._meta.db_table}" ({", ".join(_COLUMNS)}) '
        f"SELECT v.gateway_id, v.kind, v.key, v.chat_id, v.payload::jsonb, '{_PENDING}', 0, $6 "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) AS v(gateway_id, kind, key, chat_id, payload) "
        "ON CONFLICT DO NOTHING"
    )


@functools.lru_cache(maxsize=64)
def _sqlite_insert(rows: int) -> str:
    values = ", ".join([f"(?, ?, ?, ?, ?, '{_PENDING}', 0, ?)"] * rows)
    return f'INSERT INTO "{GatewayEvent._meta.db_table}" ({", ".join(_COLUMNS)}) VALUES {values} ON CONFLICT DO NOTHING'


def _insert_sqlite(connection: sqlite3.Connection, group: list[_Pending]) -> None:
    """insert_events on the group commit's own SQLite connection (app.sqlite.GroupCommit)."""
    now = str(utcnow())  # as tortoise stores datetimes in SQLite
    insert_all(connection, _sqlite_insert, [(p.gateway_id, p.kind.value, p.key, p.chat_id, p.payload, now) for p in group])


class InboxWriter:
    """Group commit: the events of concurrent requests are written in one transaction.

    On a SQLite file, a thread of the writer's own takes every event queued each time it is free
    and commits them at once, in the order they came, without waiting for the event loop in between
    (app.sqlite.GroupCommit). On PostgreSQL a task takes them, with up to `max_in_flight` groups
    being written at once on pooled connections, so that the next group is under way while one
    commits.
    """

    def __init__(self, max_batch: int = 500, max_in_flight: int = 2) -> None:
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sqlite: GroupCommit[_Pending] | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._writes: set[asyncio.Task[None]] = set()
        self.written = asyncio.Event()  # set after each commit; the dispatcher waits on it
        self.on_commit: list[Callable[[], None]] = []  # called after each commit (to wake other processes)
        self._closed = False

    def start(self) -> None:
        """Starts writing, with the database bound (app.db.Database.bound)."""
        client = GatewayEvent._meta.db
        filename = GroupCommit.file_of(client)
        if filename is None:
            self._task = asyncio.create_task(self._run(), name="inbox-writer")
            return
        pragmas = getattr(client, "pragmas", {})  # tortoise's SQLite client has them
        self._sqlite = GroupCommit(filename, pragmas, _insert_sqlite, self._committed, self.max_batch)
        while not self._queue.empty():
            self._sqlite.put(self._queue.get_nowait())

    async def stop(self) -> None:
        """Stops writing; whoever still waits hears InboxUnavailable (a webhook answers 503)."""
        self._closed = True
        tasks = [task for task in (self._task, *self._writes) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        left = self._sqlite.stop() if self._sqlite is not None else []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for p in left:
            _settle(p, InboxUnavailable("the inbox is stopping"))

    async def put(
        self, gateway_id: str, kind: EventKind, key: str, payload: str | dict[str, Any], chat_id: int | None = None
    ) -> None:
        """Returns once the event is committed (a redelivered one is ignored)."""
        if self._closed:
            raise InboxUnavailable("the inbox is stopping")
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        pending = _Pending(gateway_id, kind, key, chat_id, text, asyncio.get_running_loop().create_future())
        if self._sqlite is not None:
            self._sqlite.put(pending)
        else:
            self._queue.put_nowait(pending)
        await pending.done

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._spawn([batch], holds_slot=True)

    def _landed(self) -> None:
        self.written.set()
        for listener in self.on_commit:
            listener()

    def _committed(self, group: list[_Pending], error: Exception | None) -> None:
        """The outcome of one of GroupCommit's groups, on the event loop."""
        if error is None:
            for p in group:
                _settle(p)
            self._landed()
        elif (reason := refusal(error)) is None:
            self._unavailable(group, error)
        elif len(group) == 1:
            _settle(group[0], RowRefused(reason))
        elif not self._closed:
            middle = len(group) // 2
            self._spawn([group[middle:], group[:middle]], holds_slot=False)

    def _spawn(self, groups: list[list[_Pending]], holds_slot: bool) -> None:
        write = asyncio.create_task(self._write_groups(groups, holds_slot), name="inbox-write")
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _write_groups(self, groups: list[list[_Pending]], holds_slot: bool) -> None:
        try:
            landed = await self._write(list(groups))
        except asyncio.CancelledError:  # stopped mid-write: no caller is left waiting
            for p in (p for group in groups for p in group):
                _settle(p, InboxUnavailable("the inbox is stopping"))
            raise
        except Exception:  # a bug of ours: the callers answer 503, and the writer goes on
            log.exception("inbox writer failed")
            for p in (p for group in groups for p in group):
                _settle(p, InboxUnavailable("inbox writer failed"))
            return
        finally:
            if holds_slot:
                self._slots.release()
        if landed:
            self._landed()

    async def _insert(self, group: list[_Pending]) -> None:
        if self._sqlite is None:
            await insert_events(group)
        else:
            await self._sqlite.run(functools.partial(_insert_sqlite, group=group))

    async def _write(self, groups: list[list[_Pending]]) -> bool:
        """Commits what it can of `groups` and answers every caller; returns whether any row landed.

        A group refused for its content is halved until each refused row stands alone (about
        2·log2(n) statements for one bad row among n); any other error ends the search.
        """
        committed = False
        while groups:
            group = groups.pop()
            try:
                await self._insert(group)
            except Exception as exc:
                reason = refusal(exc)
                if reason is None:
                    unresolved = [p for g in (group, *groups) for p in g]
                    self._unavailable(unresolved, exc)
                    return committed
                if len(group) == 1:
                    _settle(group[0], RowRefused(reason))
                else:
                    middle = len(group) // 2
                    groups += [group[middle:], group[:middle]]
                continue
            committed = True
            for p in group:
                _settle(p)
        return committed

    @staticmethod
    def _unavailable(batch: list[_Pending], exc: Exception) -> None:
        # The requests answer 503 and Telegram sends them again. No traceback: it could carry rows.
        if is_unavailable(exc):
            log.warning("inbox write of %d events failed, database unavailable: %s", len(batch), describe(exc))
        else:
            log.error("inbox write of %d events failed: %s", len(batch), describe(exc))
        error = InboxUnavailable(describe(exc))
        for p in batch:
            _settle(p, error)


def _settle(pending: _Pending, error: Exception | None = None) -> None:
    if pending.done.done():  # its request went away
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)


async def reject(gateway_id: str, update_id: str | None, reason: str, body: bytes) -> None:
    """Records an update that will never be stored as an event, with the body as received."""
    await RejectedUpdate.create(gateway_id=gateway_id, update_id=update_id, reason=safe_text(reason, 255), body=body)
    log.warning(
        "update %s of gateway %s rejected, kept in rejected_updates (%d bytes): %s",
        safe_text(update_id or "-", 40), gateway_id, len(body), safe_text(reason),
    )
