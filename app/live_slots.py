"""Live subscriptions each user holds, bounded across sockets and, with Redis, across processes.

A subscription takes a slot before it runs and gives it back when it ends, however it ends. Each
process counts its own slots per user, so the bound holds in one process whatever happens to Redis.
With a `redis://` BROADCAST_URL every slot is also a member of its user's sorted set, scored with the
moment its lease ends: the set's live members are the user's subscriptions in every process. A
process renews its members' leases, so the slots of a process that died are free once their lease
runs out; while Redis cannot be reached, each process bounds its own slots only, and puts them back
in the set when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0

# Drops the user's expired members, then adds the slot if the user holds fewer than the limit.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Extends the leases of one user's members held by this process (adding back any Redis lost).
_RENEW = """
local t = redis.call('TIME')
local until_ms = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Slot:
    user_id: str
    id: str


def _key(user_id: str) -> str:
    return f"plugboard:subscriptions:{user_id}"


class RedisSlots:
    """The users' slots of every process, in Redis."""

    def __init__(self, url: str, lease_seconds: float = LEASE_SECONDS) -> None:
        self._redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.lease_ms = int(lease_seconds * 1000)
        self._take = self._redis.register_script(_TAKE)
        self._renew = self._redis.register_script(_RENEW)
        self._returns: set[asyncio.Task[None]] = set()
        self._last_failure_log = 0.0

    async def take(self, slot: Slot, limit: int) -> bool:
        """Whether the user's subscriptions in every process leave room for `slot`. When Redis
        cannot answer, yes: the caller's own bound still holds in this process."""
        try:
            return bool(await self._take(keys=[_key(slot.user_id)], args=[slot.id, limit, self.lease_ms]))
        except Exception as exc:
            self._unavailable(exc)
            return True

    def give_back(self, slot: Slot) -> None:
        """Never waits and never fails: a member Redis does not drop now ends with its lease."""
        task = asyncio.get_running_loop().create_task(self._remove(slot), name="subscription-slot-return")
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    async def _remove(self, slot: Slot) -> None:
        try:
            await self._redis.zrem(_key(slot.user_id), slot.id)
        except Exception as exc:
            self._unavailable(exc)

    async def renew(self, held: dict[str, list[str]]) -> None:
        try:
            for user_id, slot_ids in held.items():
                if slot_ids:
                    await self._renew(keys=[_key(user_id)], args=[self.lease_ms, *slot_ids])
        except Exception as exc:
            self._unavailable(exc)

    async def close(self) -> None:
        await asyncio.gather(*self._returns, return_exceptions=True)
        await self._redis.aclose()

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_failure_log > 30:
            self._last_failure_log = now
            log.warning("subscription slots: Redis unavailable (%s); each process bounds its own", type(exc).__name__)


class SubscriptionSlots:
    def __init__(self, limit: int, shared: RedisSlots | None = None) -> None:
        self.limit = limit
        self.shared = shared
        self._held: dict[str, set[str]] = {}

    @classmethod
    def of(cls, limit: int, broadcast_url: str) -> SubscriptionSlots:
        shared = RedisSlots(broadcast_url) if broadcast_url.startswith(("redis://", "rediss://")) else None
        return cls(limit, shared)

    def held(self, user_id: str) -> int:
        """The user's slots held in this process."""
        return len(self._held.get(user_id, ()))

    async def acquire(self, user_id: str) -> Slot | None:
        """A slot for one more subscription of the user's, or None when they hold the limit."""
        held = self._held.setdefault(user_id, set())
        if len(held) >= self.limit:
            self._drop_if_empty(user_id)
            return None
        slot = Slot(user_id, os.urandom(8).hex())
        held.add(slot.id)  # before Redis answers, so that this process's concurrent callers count it
        taken = False
        try:
            taken = self.shared is None or await self.shared.take(slot, self.limit)
        finally:  # refused, or cancelled while Redis answered (a member it added ends with its lease)
            if not taken:
                held.discard(slot.id)
                self._drop_if_empty(user_id)
        return slot if taken else None

    def release(self, slot: Slot) -> None:
        """Gives the slot back; never waits, never fails, and a second call changes nothing."""
        held = self._held.get(slot.user_id)
        if held is None or slot.id not in held:
            return
        held.discard(slot.id)
        self._drop_if_empty(slot.user_id)
        if self.shared is not None:
            self.shared.give_back(slot)

    def _drop_if_empty(self, user_id: str) -> None:
        if not self._held.get(user_id):
            self._held.pop(user_id, None)

    async def renew_forever(self) -> None:
        """Keeps this process's slots alive in Redis (and puts them back after Redis lost them)."""
        assert self.shared is not None
        while True:
            await self.shared.renew({user: list(ids) for user, ids in self._held.items()})
            await asyncio.sleep(self.shared.lease_ms / 3000)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
