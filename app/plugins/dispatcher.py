"""Takes committed gateway events from the inbox and routes them, one chat's events in order.

Any number of processes may run a dispatcher on one database: each claims its own events,
and an event whose process died is claimed again once its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timedelta, timezone

from aiogram.types import Message, Update
from pydantic import ValidationError

from app.gateways import inbox
from app.gateways.models import EventKind, GatewayEvent
from app.plugins.executor import EventKey
from app.plugins.models import PluginExecution, ScheduleTick
from app.plugins.router import EventRouter

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600


async def prune_history(older_than: datetime) -> None:
    """Old finished events, and the run records and schedule ticks that deduplicated them."""
    await inbox.prune(older_than)
    await PluginExecution.filter(created_at__lt=older_than).delete()
    await ScheduleTick.filter(fired_at__lt=older_than).delete()


class Dispatcher:
    def __init__(
        self,
        router: EventRouter,
        writer: inbox.InboxWriter,
        concurrency: int,
        lease_seconds: float,
        poll_seconds: float,
        retention_hours: float = 48,
    ) -> None:
        self.router = router
        self.writer = writer
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retention = timedelta(hours=retention_hours)
        self._next_prune = 0.0
        self._lanes: dict[tuple[str, int | None], deque[GatewayEvent]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-dispatcher")

    async def stop(self) -> None:
        waiting = [event for lane in self._lanes.values() for event in lane]
        tasks = [t for t in (self._task, *self._lane_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        for event in waiting:  # claimed but not started: give back at once, not after the lease
            await inbox.give_back(event)

    @property
    def capacity(self) -> int:
        return self.concurrency * 8 - self._in_flight

    async def _run(self) -> None:
        while True:
            await self._prune_now_and_then()
            self.writer.written.clear()
            claimed: list[GatewayEvent] = []
            if self.capacity > 0:
                try:
                    claimed = await inbox.claim(self.capacity, self.lease_seconds)
                except Exception:
                    log.exception("claiming inbox events failed")
            for event in claimed:
                self._enqueue(event)
            if claimed and self.capacity > 0:
                continue
            try:
                await asyncio.wait_for(self.writer.written.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def _prune_now_and_then(self) -> None:
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_SECONDS
        try:
            await prune_history(datetime.now(timezone.utc) - self.retention)
        except Exception:
            log.exception("pruning old events failed")

    def _enqueue(self, event: GatewayEvent) -> None:
        self._in_flight += 1
        lane_key = (event.gateway_id, event.chat_id)
        lane = self._lanes.get(lane_key)
        if lane is not None:
            lane.append(event)
            return
        self._lanes[lane_key] = deque([event])
        task = asyncio.create_task(self._drain(lane_key))
        self._lane_tasks.add(task)
        task.add_done_callback(self._lane_tasks.discard)

    async def _drain(self, lane_key: tuple[str, int | None]) -> None:
        lane = self._lanes[lane_key]
        try:
            while lane:
                event = lane.popleft()
                async with self._slots:
                    await self.process(event)
                self._in_flight -= 1
        finally:
            del self._lanes[lane_key]

    async def process(self, event: GatewayEvent) -> None:
        try:
            await self._route(event)
        except ValidationError:
            log.error("gateway event %s is not a valid %s; dropped", event.id, event.kind.value)
            await inbox.fail(event)
            return
        except Exception:
            log.exception("routing gateway event %s failed (attempt %d)", event.id, event.attempts)
            await inbox.retry_later(event)
            return
        await inbox.complete(event)

    async def _route(self, event: GatewayEvent) -> None:
        key = EventKey(f"{event.kind.value}:{event.gateway_id}:{event.key}", replay=event.attempts > 1)
        if event.kind == EventKind.MESSAGE_SENT:
            await self.router.route_message_sent(event.gateway_id, Message.model_validate(event.payload), key)
            return
        update = Update.model_validate(event.payload)
        if update.message is not None or update.channel_post is not None:
            await self.router.route_telegram_message(event.gateway_id, update, key)
        elif update.callback_query is not None:
            await self.router.route_telegram_callback(event.gateway_id, update, key)
