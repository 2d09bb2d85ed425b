"""Telegram's send limits, kept where every process of one deployment sees them.

Each limit is a key with a GCRA "next free time" (the theoretical arrival time): a send reserves
the earliest time at which all of its keys allow it, and moves each key's time on by its interval.
A send to a chat holds the chat's key (about 1 a second) and, for a group or channel (a negative id,
or an @username), the group's (20 a minute); then, when its turn comes, the bot's (about 30 a
second). The bot's is taken in the same reservation when the send need not wait for its chat: taken
ahead, a far turn would move the bot's time far on and hold up all its other chats until then. A
bot's `pause` is the end of a 429's `retry_after`: nothing of that bot is sent before it.

Reservations are atomic across processes: in the database (one transaction per reservation,
serialized per bot) or in Redis (one Lua script). Times come from the database's or Redis's clock,
so processes on several hosts agree. A reservation that is not used (its wait was cancelled) is given
back when no later one was made on top of it, so a cancelled wait holds no slot of anyone's.
While Redis cannot be reached, the database stands in for it: app/gateways/limits_failover.py.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tortoise.transactions import in_transaction

from app.db import serialize
from app.db_errors import said_as_database_failure
from app.errors import GatewayUnreachable
from app.settings import Settings, without_password
from app.sql import dialect_of, insert_rows, placeholders

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

MAX_CHAT_KEY = 40  # longer chat ids (an @username can be long) are hashed into the key
PRUNE_EVERY_SECONDS = 600.0
# A key whose time passed this long ago means the same as no key: its row (or Redis key) goes.
EXPIRED_AFTER_SECONDS = 60.0
# At most this many keys are carried from the database into Redis when it answers again.
MAX_CARRIED = 10_000


@dataclass(frozen=True)
class Rate:
    """At most one send every `interval` seconds, `burst` at once after a quiet spell."""

    interval: float
    burst: int = 1

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


@dataclass(frozen=True)
class SendRates:
    chat: Rate = Rate(1.0)
    group: Rate = Rate(3.0)  # 20 a minute, spread evenly
    bot: Rate = Rate(1 / 30)

    @classmethod
    def of(cls, settings: Settings) -> SendRates:
        return cls(
            chat=Rate(1 / settings.send_chat_per_second),
            group=Rate(60 / settings.send_group_per_minute),
            bot=Rate(1 / settings.send_bot_per_second),
        )


@dataclass(frozen=True)
class Slot:
    key: str
    rate: Rate


def is_group(chat_id: int | str) -> bool:
    """Groups, supergroups and channels have negative ids; channels may be named `@username`."""
    return str(chat_id).startswith(("-", "@"))


def bot_slot(bot_id: int, rates: SendRates) -> Slot:
    return Slot(f"bot:{bot_id}", rates.bot)


def slots_for(bot_id: int, chat_id: int | str | None, rates: SendRates) -> list[Slot]:
    """The keys a call of `bot_id` to `chat_id` holds besides the bot's: the chat's, and the group's."""
    slots: list[Slot] = []
    if chat_id is None:
        return slots
    chat = str(chat_id)
    if len(chat) > MAX_CHAT_KEY:
        chat = "#" + hashlib.sha256(chat.encode()).hexdigest()[:32]
    slots.append(Slot(f"chat:{bot_id}:{chat}", rates.chat))
    if is_group(chat_id):
        slots.append(Slot(f"group:{bot_id}:{chat}", rates.group))
    return slots


@dataclass(frozen=True)
class Held:
    """One key's time before and after a reservation moved it: what giving it back restores."""

    key: str
    before: float
    after: float


@dataclass(frozen=True)
class Reservation:
    """`wait`: seconds from now until the reserved time. Not `granted` when that is more than the
    caller's budget: then nothing was reserved. Not `turn_taken` when the bot's own slot is still to
    be reserved when that time comes. `paused`: seconds the bot's pause still runs. `store`: which
    store made it, when several stand in for each other (giving it back goes there)."""

    granted: bool
    wait: float
    held: tuple[Held, ...] = ()
    turn_taken: bool = True
    paused: float = 0.0
    store: str = ""


def plan(
    now: float,
    pause_until: float,
    current: Mapping[str, float],
    slots: Sequence[Slot],
    budget: float | None,
    turn: Slot | None = None,
    not_before: float = 0.0,
) -> Reservation:
    """The reservation GCRA makes at `now` for `slots`, given each key's current time (absent: free),
    for a send `not_before` seconds from now at the earliest; and for `turn` (the bot's slot) too
    when nothing else makes the send wait longer than that."""
    earliest = now + not_before
    at = max([earliest, pause_until] + [current.get(s.key, 0.0) - s.rate.tolerance for s in slots])
    taken = list(slots)
    if turn is not None and at <= earliest:
        at = max(at, current.get(turn.key, 0.0) - turn.rate.tolerance)
        taken.append(turn)
    wait, paused = at - now, max(0.0, pause_until - now)
    if budget is not None and wait > budget:
        return Reservation(granted=False, wait=wait, turn_taken=False, paused=paused)
    held = tuple(
        Held(s.key, current.get(s.key, 0.0), max(current.get(s.key, 0.0), at) + s.rate.interval) for s in taken
    )
    return Reservation(
        granted=True, wait=wait, held=held, turn_taken=turn is None or len(taken) > len(slots), paused=paused
    )


class SendLimits(Protocol):
    """Where reservations are kept. `scope` names the bot: its pause and lock."""

    async def reserve(
        self,
        scope: str,
        slots: Sequence[Slot],
        budget: float | None,
        turn: Slot | None = None,
        not_before: float = 0.0,
    ) -> Reservation: ...

    async def give_back(self, reservation: Reservation) -> None: ...

    async def pause(self, scope: str, seconds: float) -> None: ...

    async def paused_for(self, scope: str) -> float: ...

    async def close(self) -> None: ...


def pause_key(scope: str) -> str:
    return f"pause:{scope}"


# -- the database --------------------------------------------------------------------------------

_NOW = {
    "postgres": "EXTRACT(EPOCH FROM clock_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_GREATEST = {"postgres": "GREATEST", "sqlite": "MAX"}


class DatabaseLimits:
    """Reservations in the `send_limits` table, on SQLite or PostgreSQL.

    A bot's reservations run one at a time across processes (a transaction-scoped advisory lock on
    PostgreSQL; SQLite's write lock, which every transaction takes first): read the keys and the
    database's clock, decide, write the keys' new times. Rows whose time has long passed are
    deleted now and then."""

    def __init__(self, prune_every_seconds: float = PRUNE_EVERY_SECONDS) -> None:
        self.prune_every_seconds = prune_every_seconds
        self._pruned_at = time.monotonic()

    async def reserve(
        self,
        scope: str,
        slots: Sequence[Slot],
        budget: float | None,
        turn: Slot | None = None,
        not_before: float = 0.0,
    ) -> Reservation:
        keys = [pause_key(scope)] + [s.key for s in [*slots, *([turn] if turn else [])]]
        async with said_as_database_failure("send limits unreadable"), in_transaction() as connection:
            await serialize(connection, f"send-limits:{scope}")
            dialect = dialect_of(connection)
            marks = ", ".join(placeholders(connection, len(keys)))
            rows = await connection.execute_query_dict(
                f'SELECT "key", free_at FROM send_limits WHERE "key" IN ({marks})'
                f" UNION ALL SELECT '', {_NOW[dialect]}",
                keys,
            )
            times = {row["key"]: float(row["free_at"]) for row in rows}
            now = times.pop("")
            reservation = plan(now, times.pop(keys[0], 0.0), times, slots, budget, turn, not_before)
            if reservation.held:
                await insert_rows(
                    connection,
                    "send_limits",
                    ('"key"', "free_at"),
                    [(held.key, held.after) for held in reservation.held],
                    'ON CONFLICT ("key") DO UPDATE SET free_at = excluded.free_at',
                )
        if time.monotonic() - self._pruned_at > self.prune_every_seconds:
            await self.prune()
        return reservation

    async def give_back(self, reservation: Reservation) -> None:
        if not reservation.held:
            return
        async with in_transaction() as connection:
            marks = placeholders(connection, 3)
            for held in reservation.held:
                await connection.execute_query(
                    f'UPDATE send_limits SET free_at = {marks[0]} WHERE "key" = {marks[1]} AND free_at = {marks[2]}',
                    [held.before, held.key, held.after],
                )

    async def pause(self, scope: str, seconds: float) -> None:
        async with in_transaction() as connection:
            dialect = dialect_of(connection)
            key, wait = placeholders(connection, 2)
            await connection.execute_query(
                f'INSERT INTO send_limits ("key", free_at) VALUES ({key}, {_NOW[dialect]} + {wait})'
                f' ON CONFLICT ("key") DO UPDATE SET free_at = {_GREATEST[dialect]}(send_limits.free_at, excluded.free_at)',
                [pause_key(scope), float(seconds)],
            )

    async def paused_for(self, scope: str) -> float:
        async with in_transaction() as connection:
            dialect = dialect_of(connection)
            (key,) = placeholders(connection, 1)
            rows = await connection.execute_query_dict(
                f'SELECT free_at - {_NOW[dialect]} AS left_seconds FROM send_limits WHERE "key" = {key}',
                [pause_key(scope)],
            )
        return max(0.0, float(rows[0]["left_seconds"])) if rows else 0.0

    async def ahead(self, limit: int = MAX_CARRIED) -> list[tuple[str, float]]:
        """The keys whose time is still to come, with the seconds until then (the furthest first):
        what another store taking over must hold too."""
        async with in_transaction() as connection:
            dialect = dialect_of(connection)
            rows = await connection.execute_query_dict(
                f'SELECT "key", free_at - clock.seconds AS left_seconds FROM send_limits,'
                f" (SELECT {_NOW[dialect]} AS seconds) AS clock WHERE free_at > clock.seconds"
                f" ORDER BY free_at DESC LIMIT {int(limit)}"
            )
        return [(row["key"], float(row["left_seconds"])) for row in rows]

    async def prune(self) -> None:
        self._pruned_at = time.monotonic()
        async with in_transaction() as connection:
            dialect = dialect_of(connection)
            (margin,) = placeholders(connection, 1)
            await connection.execute_query(
                f"DELETE FROM send_limits WHERE free_at < {_NOW[dialect]} - {margin}", [EXPIRED_AFTER_SECONDS]
            )

    async def close(self) -> None:
        return None


# -- Redis -----------------------------------------------------------------------------------------

REDIS_PREFIX = "plugboard:send:"

# KEYS[1]: the pause key; KEYS[2..]: the slots' keys, then the turn's key when ARGV[2] is 1.
# ARGV[1]: the budget (negative: none); ARGV[2]: 1 with a turn; ARGV[3]: not before (seconds from
# now); then, for each key from KEYS[2], its interval and its tolerance; last, optionally, the time
# to take as now (by default Redis's clock; a test sets it to hold the script to plan()). Returns
# {granted, wait, paused, keys moved, before1, after1, ...}, the times as text with microseconds,
# exactly as stored (giving back compares them). The rule is plan()'s, step for step.
_RESERVE = """
local now
if ARGV[2 * #KEYS + 2] then
  now = tonumber(ARGV[2 * #KEYS + 2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local pause_until = tonumber(redis.call('GET', KEYS[1]) or '0')
local earliest = now + tonumber(ARGV[3])
local at = math.max(earliest, pause_until)
local last = #KEYS
if ARGV[2] == '1' then
  last = #KEYS - 1
end
local before = {}
for i = 2, #KEYS do
  before[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
for i = 2, last do
  at = math.max(at, before[i] - tonumber(ARGV[2 * i + 1]))
end
local taken = last
if last < #KEYS and at <= earliest then
  at = math.max(at, before[#KEYS] - tonumber(ARGV[2 * #KEYS + 1]))
  taken = #KEYS
end
local result = {0, string.format('%.6f', at - now), string.format('%.6f', math.max(0, pause_until - now)), taken - 1}
local budget = tonumber(ARGV[1])
if budget >= 0 and at - now > budget then
  return result
end
result[1] = 1
for i = 2, taken do
  local after = math.max(before[i], at) + tonumber(ARGV[2 * i])
  local text = string.format('%.6f', after)
  redis.call('SET', KEYS[i], text, 'PX', math.ceil((after - now + %(expired)s) * 1000))
  table.insert(result, string.format('%.6f', before[i]))
  table.insert(result, text)
end
return result
""".replace("%(expired)s", repr(EXPIRED_AFTER_SECONDS))

# KEYS: the held keys; ARGV: before1, after1, ...: a key still at `after` goes back to `before`.
_GIVE_BACK = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2 * i] then
    if tonumber(ARGV[2 * i - 1]) <= 0 then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'KEEPTTL')
    end
  end
end
return 1
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', math.ceil((untl - now + %(expired)s) * 1000))
end
return 1
""".replace("%(expired)s", repr(EXPIRED_AFTER_SECONDS))

# KEYS: keys; ARGV: for each, seconds from now: a key whose time is sooner is moved on to then.
_HOLD_AT_LEAST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 1, #KEYS do
  local left = tonumber(ARGV[i])
  local untl = now + left
  if untl > tonumber(redis.call('GET', KEYS[i]) or '0') then
    redis.call('SET', KEYS[i], string.format('%.6f', untl), 'PX', math.ceil((left + %(expired)s) * 1000))
  end
end
return 1
""".replace("%(expired)s", repr(EXPIRED_AFTER_SECONDS))

_PAUSED_FOR = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return string.format('%.6f', math.max(0, tonumber(redis.call('GET', KEYS[1]) or '0') - now))
"""


def reserve_arguments(
    scope: str,
    slots: Sequence[Slot],
    budget: float | None,
    turn: Slot | None,
    not_before: float,
    now: float | None = None,
) -> tuple[list[str], list[float]]:
    """The keys and arguments of _RESERVE for plan()'s inputs (`now`: the script reads Redis's clock)."""
    every = [*slots, *([turn] if turn else [])]
    keys = [REDIS_PREFIX + pause_key(scope)] + [REDIS_PREFIX + s.key for s in every]
    args: list[float] = [-1.0 if budget is None else budget, 1 if turn else 0, not_before]  # the script reads "1"
    for slot in every:
        args += [slot.rate.interval, slot.rate.tolerance]
    return keys, args if now is None else [*args, now]


def reservation_of(result: Sequence[Any], slots: Sequence[Slot], turn: Slot | None) -> Reservation:
    """_RESERVE's answer as a Reservation."""
    every = [*slots, *([turn] if turn else [])]
    granted, wait, paused, moved = bool(int(result[0])), float(result[1]), float(result[2]), int(result[3])
    times = [float(value) for value in result[4:]]
    held = tuple(Held(s.key, times[2 * i], times[2 * i + 1]) for i, s in enumerate(every[:moved])) if granted else ()
    turn_taken = granted and (turn is None or moved == len(every))
    return Reservation(granted=granted, wait=wait, held=held, turn_taken=turn_taken, paused=paused)


class LimitsUnavailable(GatewayUnreachable):
    """The shared send limits cannot be read or written (Redis is down): nothing is sent unlimited.
    Its message may reach a user: it never names our infrastructure (the log line does)."""

    def __init__(self) -> None:
        super().__init__("Our rate-limit store cannot be reached")


class RedisLimits:
    """Reservations in Redis (BROADCAST_URL=redis://…): each one a Lua script, atomic, one round trip.
    Keys expire by themselves a minute after their time has passed."""

    def __init__(self, url: str) -> None:
        from redis import asyncio as aioredis

        self.client: Redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.address = without_password(url)
        self._reserve = self.client.register_script(_RESERVE)
        self._give_back = self.client.register_script(_GIVE_BACK)
        self._pause = self.client.register_script(_PAUSE)
        self._paused_for = self.client.register_script(_PAUSED_FOR)
        self._hold_at_least = self.client.register_script(_HOLD_AT_LEAST)

    async def reserve(
        self,
        scope: str,
        slots: Sequence[Slot],
        budget: float | None,
        turn: Slot | None = None,
        not_before: float = 0.0,
    ) -> Reservation:
        keys, args = reserve_arguments(scope, slots, budget, turn, not_before)
        return reservation_of(await self._run(self._reserve(keys=keys, args=args)), slots, turn)

    async def give_back(self, reservation: Reservation) -> None:
        if not reservation.held:
            return
        args: list[str] = []
        for held in reservation.held:
            args += [f"{held.before:.6f}", f"{held.after:.6f}"]
        await self._run(self._give_back(keys=[REDIS_PREFIX + held.key for held in reservation.held], args=args))

    async def pause(self, scope: str, seconds: float) -> None:
        await self._run(self._pause(keys=[REDIS_PREFIX + pause_key(scope)], args=[float(seconds)]))

    async def paused_for(self, scope: str) -> float:
        return float(await self._run(self._paused_for(keys=[REDIS_PREFIX + pause_key(scope)])))

    async def hold_at_least(self, times: Sequence[tuple[str, float]], batch: int = 500) -> None:
        """Moves each key's time on to at least the given seconds from now (by Redis's clock)."""
        for start in range(0, len(times), batch):
            chunk = times[start : start + batch]
            await self._run(
                self._hold_at_least(keys=[REDIS_PREFIX + key for key, _ in chunk], args=[left for _, left in chunk])
            )

    async def answers(self) -> bool:
        """Whether Redis answers now (a PING); a failure is not logged."""
        from redis.exceptions import RedisError

        try:
            await self.client.ping()
        except (RedisError, OSError):
            return False
        return True

    async def _run(self, call: Awaitable[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await call
        except (RedisError, OSError) as exc:
            log.warning("the send limits at %s cannot be reached: %s", self.address, type(exc).__name__)
            raise LimitsUnavailable() from None

    async def close(self) -> None:
        await self.client.aclose()
