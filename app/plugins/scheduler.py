"""Fires each plugin's declared schedules. With several processes on one database a tick fires
once: the first process to insert its ScheduleTick row fires it, the others find it taken."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from tortoise.exceptions import IntegrityError

from app.plugins.executor import EventKey
from app.plugins.models import ScheduleTick
from app.plugins.registry import PluginRegistry
from app.plugins.router import EventRouter

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, registry: PluginRegistry, router: EventRouter, tick_seconds: float) -> None:
        self.registry = registry
        self.router = router
        self.tick_seconds = tick_seconds
        self._task: asyncio.Task[None] | None = None
        self._last: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        if any(handler.schedules for handler in self.registry):
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.fire_due(time.time())
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(self.tick_seconds)

    async def fire_due(self, now: float) -> int:
        """Fires every schedule whose current tick no process has fired yet; returns how many."""
        fired = 0
        for handler in self.registry:
            for schedule in handler.schedules:
                tick = int(now // schedule.every_seconds)
                key = (handler.slug, schedule.name)
                if self._last.get(key) == tick:
                    continue
                self._last[key] = tick
                if await self._claim(handler.slug, schedule.name, tick):
                    fired_at = datetime.fromtimestamp(tick * schedule.every_seconds, timezone.utc)
                    # The tick row is unique, so this is its one and only firing.
                    event_key = EventKey(f"schedule:{schedule.name}:{tick}", replay=False)
                    await self.router.route_schedule_trigger(handler.slug, schedule.name, fired_at, event_key)
                    fired += 1
        return fired

    async def _claim(self, slug: str, schedule: str, tick: int) -> bool:
        try:
            await ScheduleTick.create(plugin_slug=slug, schedule=schedule, tick=tick)
        except IntegrityError:
            return False
        return True
