"""Send limits that outlive a Redis outage: in Redis while it answers, in the database while not.

With BROADCAST_URL=redis://…, reservations are made in Redis. When a call to Redis fails, this
process makes its reservations in the database's `send_limits` table instead (as a deployment
without Redis does), which every process that cannot reach Redis shares: a send is neither lost nor
made unlimited. Meanwhile Redis is tried again, in the background, at most every `probe_every_seconds`
while sends come. Once it answers, the times still ahead in the database are carried into Redis
(each key moved on to at least them), and then Redis is used again.

Across a switch, either way, a process also holds to what it reserved itself in the other store:
its reservation for a key comes no sooner than its last one there allows. What another process
reserved in Redis just before Redis went away is not seen; neither, for the moment it takes each
process to notice that Redis is back, is what the others still reserve in the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from app.db_errors import describe
from app.gateways.limits import DatabaseLimits, LimitsUnavailable, RedisLimits, Reservation, SendLimits, Slot, pause_key
from app.settings import Settings
from app.supervision import spawn

log = logging.getLogger(__name__)

REDIS = "redis"
DATABASE = "database"
PROBE_EVERY_SECONDS = 2.0
# Keys remembered across a switch before those whose time has passed are forgotten.
MAX_REMEMBERED = 10_000


class FailoverLimits:
    def __init__(
        self, redis: RedisLimits, database: DatabaseLimits, probe_every_seconds: float = PROBE_EVERY_SECONDS
    ) -> None:
        self.redis = redis
        self.database = database
        self.probe_every_seconds = probe_every_seconds
        self._down_since: float | None = None  # when Redis failed (time.monotonic()); None while it is used
        self._probed_at = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._recovering = asyncio.Lock()
        # For each store, key -> when this process's reservations there free it (time.monotonic()).
        self._recent: dict[str, dict[str, float]] = {REDIS: {}, DATABASE: {}}
        self._pruned_at = time.monotonic()

    @property
    def store(self) -> str:
        """Where reservations are made now: REDIS, or DATABASE while Redis cannot be reached."""
        return REDIS if self._down_since is None else DATABASE

    async def reserve(
        self,
        scope: str,
        slots: Sequence[Slot],
        budget: float | None,
        turn: Slot | None = None,
        not_before: float = 0.0,
    ) -> Reservation:
        every = [*slots, *([turn] if turn else [])]
        keys = [pause_key(scope)] + [slot.key for slot in every]
        if self.store == REDIS:
            try:
                made = await self.redis.reserve(scope, slots, budget, turn, self._not_before(REDIS, keys, not_before))
                return self._remember(REDIS, made, every)
            except LimitsUnavailable:
                self._fail_over()
        self._probe_later()
        made = await self.database.reserve(scope, slots, budget, turn, self._not_before(DATABASE, keys, not_before))
        return self._remember(DATABASE, made, every)

    async def give_back(self, reservation: Reservation) -> None:
        if not reservation.held:
            return
        if reservation.store == DATABASE:
            await self.database.give_back(reservation)
            return
        try:
            await self.redis.give_back(reservation)
        except LimitsUnavailable:  # its keys expire by themselves
            self._fail_over()

    async def pause(self, scope: str, seconds: float) -> None:
        store = self.store
        if store == REDIS:
            try:
                await self.redis.pause(scope, seconds)
            except LimitsUnavailable:
                self._fail_over()
                store = DATABASE
        if store == DATABASE:
            self._probe_later()
            await self.database.pause(scope, seconds)
        self._hold(store, pause_key(scope), time.monotonic() + seconds)

    async def paused_for(self, scope: str) -> float:
        if self.store == REDIS:
            try:
                return max(await self.redis.paused_for(scope), self._not_before(REDIS, [pause_key(scope)], 0.0))
            except LimitsUnavailable:
                self._fail_over()
        return max(await self.database.paused_for(scope), self._not_before(DATABASE, [pause_key(scope)], 0.0))

    async def recover(self) -> bool:
        """Tries Redis now, if the limits are in the database: when it answers, the times still ahead
        in the database are carried into Redis and Redis is used again. Whether Redis is in use."""
        async with self._recovering:
            if self._down_since is None:
                return True
            try:
                if not await self.redis.answers():
                    return False
                await self.redis.hold_at_least(await self.database.ahead())
            except LimitsUnavailable:
                return False
            finally:
                self._probed_at = time.monotonic()
            log.warning(
                "send limits: Redis answers again after %.0f s; sends are limited through it again",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
            return True

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        await asyncio.gather(self.redis.close(), self.database.close(), return_exceptions=True)

    def _fail_over(self) -> None:
        if self._down_since is None:
            self._down_since = self._probed_at = time.monotonic()
            log.warning("send limits: Redis cannot be reached; sends are limited through the database until it answers")

    def _probe_later(self) -> None:
        """Starts a try of Redis in the background, unless one runs or the last was too recent."""
        if self._probe is None and time.monotonic() - self._probed_at >= self.probe_every_seconds:
            self._probe = spawn(self._try_redis(), "send-limits-probe")

    async def _try_redis(self) -> None:
        try:
            await self.recover()
        except Exception as exc:  # the database failed carrying the times over: tried again later
            log.warning("send limits: cannot move back to Redis yet: %s", describe(exc))
        finally:
            self._probe = None

    def _not_before(self, store: str, keys: Sequence[str], not_before: float) -> float:
        """`not_before`, or later: when this process's reservations in the other store free `keys`."""
        now = time.monotonic()
        for other, times in self._recent.items():
            if other != store:
                not_before = max([not_before] + [times[key] - now for key in keys if key in times])
        return not_before

    def _remember(self, store: str, reservation: Reservation, every: Sequence[Slot]) -> Reservation:
        if reservation.held:
            due = time.monotonic() + reservation.wait
            intervals = {slot.key: slot.rate.interval for slot in every}
            for held in reservation.held:
                self._hold(store, held.key, due + intervals[held.key])
        return replace(reservation, store=store)

    def _hold(self, store: str, key: str, free_at: float) -> None:
        times = self._recent[store]
        times[key] = max(free_at, times.get(key, free_at))
        now = time.monotonic()
        if len(times) > MAX_REMEMBERED and now - self._pruned_at > 1.0:  # at most once a second
            self._pruned_at = now
            self._recent[store] = {k: at for k, at in times.items() if at > now}


def create_limits(settings: Settings) -> SendLimits:
    """Redis when the deployment has one (BROADCAST_URL=redis://…), standing in the database for it
    while it cannot be reached; the database otherwise."""
    if settings.broadcast_url.split(":", 1)[0].lower() in ("redis", "rediss"):
        return FailoverLimits(RedisLimits(settings.broadcast_url), DatabaseLimits())
    return DatabaseLimits()
