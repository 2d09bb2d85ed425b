"""Fires each plugin's declared schedules. With several processes on one database a tick fires
once: the first process to insert its ScheduleTick row fires it, the others find it taken.

A tick is only settled once the database has answered for it. When the database fails, the tick
is tried again on the next turn: a claim that failed is claimed again, and a tick claimed but not
fully routed is routed again as a replay (runs already recorded are not repeated).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from app.db_errors import describe, is_unavailable
from app.plugins.contract import EventType, RunTrigger, Schedule
from app.plugins.models import ScheduleTick
from app.plugins.registry import PluginRegistry
from app.plugins.router import EventRouter
from app.plugins.runs import Origin, RunRecorder
from app.supervision import Heartbeat, cancel, start_supervised

log = logging.getLogger(__name__)

MISSED_BEATS = 3
QUIET_LOG_SECONDS = 30.0

ScheduleKey = tuple[str, str]  # plugin slug, schedule name


class Scheduler:
    def __init__(
        self,
        registry: PluginRegistry,
        router: EventRouter,
        recorder: RunRecorder,
        tick_seconds: float,
        *,
        run_timeout_seconds: float,
        heartbeat_grace_seconds: float,
    ) -> None:
        self.registry = registry
        self.router = router
        self.recorder = recorder
        self.tick_seconds = tick_seconds
        # A turn fires plugins and waits for them: it may take the plugin timeout.
        self.heartbeat = Heartbeat(
            "scheduler", MISSED_BEATS * tick_seconds + run_timeout_seconds + heartbeat_grace_seconds
        )
        self._task: asyncio.Task[None] | None = None
        self._last: dict[ScheduleKey, int] = {}  # the last tick settled here, per schedule
        self._unrouted: dict[ScheduleKey, int] = {}  # a tick claimed here whose routing failed

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if any(handler.schedules for handler in self.registry):
            self.heartbeat.beat()
            self._task = start_supervised("scheduler", self._run)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel([self._task])
            self._task = None

    async def _run(self) -> None:
        failures, logged_at = 0, float("-inf")
        while True:
            try:
                await self.fire_due(time.time())
            except Exception as exc:
                failures += 1
                if time.monotonic() - logged_at >= QUIET_LOG_SECONDS:
                    logged_at = time.monotonic()
                    if is_unavailable(exc):
                        log.warning(
                            "scheduler tick failed (%d times), database unavailable: %s", failures, describe(exc)
                        )
                    else:
                        log.error("scheduler tick failed (%d times)", failures, exc_info=exc)
            else:
                self.heartbeat.beat()
                if failures:
                    log.warning("scheduler ticks work again, after %d failures", failures)
                    failures, logged_at = 0, float("-inf")
            await asyncio.sleep(self.tick_seconds)

    async def fire_due(self, now: float) -> int:
        """Fires every schedule whose current tick no process has fired yet; returns how many.
        Raises when the database failed for some schedule (those are tried again next time)."""
        fired = 0
        failure: Exception | None = None
        for handler in self.registry:
            for schedule in handler.schedules:
                key = (handler.slug, schedule.name)
                try:
                    await self._route_unrouted(key, schedule)
                    tick = int(now // schedule.every_seconds)
                    if self._last.get(key) == tick:
                        continue
                    claimed = await self._claim(handler.slug, schedule.name, tick)
                    self._last[key] = tick
                    if claimed:
                        self._unrouted[key] = tick
                        await self._route(key, tick, schedule, replay=False)
                        fired += 1
                except Exception as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure
        return fired

    async def _route_unrouted(self, key: ScheduleKey, schedule: Schedule) -> None:
        tick = self._unrouted.get(key)
        if tick is not None:
            await self._route(key, tick, schedule, replay=True)

    async def _route(self, key: ScheduleKey, tick: int, schedule: Schedule, replay: bool) -> None:
        slug, name = key
        fired_at = datetime.fromtimestamp(tick * schedule.every_seconds, UTC)
        only = None if schedule.pending is None else await schedule.pending(fired_at)
        # The tick row is unique, so this process alone fires it; a replay skips runs already recorded.
        origin = Origin(
            key=f"schedule:{name}:{tick}",
            trigger=RunTrigger.SCHEDULE,
            event_type=EventType.SCHEDULE_TRIGGER,
            schedule=name,
            fired_at=fired_at,
            replay=replay,
        )
        await self.recorder.record(await self.router.schedule(slug, name, fired_at, origin, only))
        self._unrouted.pop(key, None)

    async def _claim(self, slug: str, schedule: str, tick: int) -> bool:
        try:
            await ScheduleTick.create(plugin_slug=slug, schedule=schedule, tick=tick)
        except IntegrityError:
            return False
        return True
