"""Open websockets signed in with an API token, ended as soon as the token stops working.

A websocket is authenticated once, at connection_init; this keeps it honest afterwards. Each process
holds its signed-in sockets (`OpenSockets`) and closes one with graphql-transport-ws's 4403 Forbidden:

- at once on a notice over the pub/sub (`CHANNEL`; BROADCAST_URL, so Redis reaches every process),
  which a revocation or a user's deletion sends (`announce`; the API and the CLI alike);
- at the token's `expires_at`, by a timer of the socket's own;
- at the next periodic re-check (every `RECHECK_SECONDS`: one query for all of this process's
  sockets), should a notice be lost: Redis down, a CLI on memory://, a revocation in SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from broadcaster import Broadcast

from app.accounts.context import ServiceContext
from app.accounts.token_cache import TokenCache
from app.accounts.tokens import working_tokens
from app.clock import utcnow

log = logging.getLogger(__name__)

# Its notices also reach the process's token cache (app/accounts/token_cache.py).
CHANNEL = "plugboard:sessions:ended"
RECHECK_SECONDS = 0.5
# graphql-transport-ws's close for an operation the connection may not do (strawberry's too, for a
# connection_init it rejects).
FORBIDDEN_CODE = 4403
FORBIDDEN_REASON = "Forbidden"
# Token ids per query of the re-check (bound parameters stay well under every backend's limit).
RECHECK_BATCH = 500


def notice(token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> str:
    return json.dumps({"tokens": sorted(token_ids), "users": sorted(user_ids)})


async def announce(broadcast: Broadcast, token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> bool:
    """Tells every process to close the sockets of these tokens and users. Never fails: a notice
    that cannot be sent is made up for by each process's re-check. Whether it was sent."""
    try:
        await broadcast.publish(CHANNEL, notice(token_ids, user_ids))
    except Exception as exc:  # noqa: BLE001 - the re-check ends them a moment later
        log.warning("sessions-ended notice not published (%s); the periodic re-check ends them", type(exc).__name__)
        return False
    return True


async def announce_to(broadcast_url: str, token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> bool:
    """`announce` from a process that has no pub/sub of its own (the CLI). On memory:// there is no
    other process to tell: the servers' re-check ends the sockets. Whether a notice was sent."""
    if urlsplit(broadcast_url).scheme not in ("redis", "rediss"):
        return False
    from app.pubsub import RedisPubSubBackend

    backend = RedisPubSubBackend(broadcast_url)  # publishes without listening: nothing to connect
    try:
        await backend.publish(CHANNEL, notice(token_ids, user_ids))
    except Exception as exc:  # noqa: BLE001
        log.warning("sessions-ended notice not published (%s); the periodic re-check ends them", type(exc).__name__)
        return False
    finally:
        with contextlib.suppress(Exception):
            await backend.disconnect()
    return True


@dataclass(eq=False)
class OpenSocket:
    token_id: str
    user_id: str
    close: Callable[[], Awaitable[None]]
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    ended: bool = False


class OpenSockets:
    """This process's websockets signed in with a token, each closed (once) when its token stops working."""

    def __init__(
        self, broadcast: Broadcast, token_cache: TokenCache | None = None, recheck_seconds: float = RECHECK_SECONDS
    ) -> None:
        self.broadcast = broadcast
        self.token_cache = token_cache  # told of every notice too: the tokens it names stop working
        self.recheck_seconds = recheck_seconds
        self.rechecks = 0  # re-checks done: tests wait for one
        self._by_token: dict[str, set[OpenSocket]] = {}
        self._by_user: dict[str, set[OpenSocket]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(len(held) for held in self._by_token.values())

    def add(self, service: ServiceContext, close: Callable[[], Awaitable[None]]) -> OpenSocket | None:
        """Holds a signed-in socket until `remove`; None for one not signed in with a token."""
        if service.token_id is None:
            return None
        socket = OpenSocket(service.token_id, service.user_id, close)
        self._by_token.setdefault(socket.token_id, set()).add(socket)
        self._by_user.setdefault(socket.user_id, set()).add(socket)
        if service.expires_at is not None:
            delay = max(0.0, (service.expires_at - utcnow()).total_seconds())
            socket.timer = asyncio.get_running_loop().call_later(delay, self._end, socket)
        return socket

    def remove(self, socket: OpenSocket | None) -> None:
        if socket is None:
            return
        _discard(self._by_token, socket.token_id, socket)
        _discard(self._by_user, socket.user_id, socket)
        if socket.timer is not None:
            socket.timer.cancel()

    def end(self, token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> int:
        """Closes this process's sockets of these tokens and users; how many."""
        ending: set[OpenSocket] = set()
        for token_id in token_ids:
            ending.update(self._by_token.get(token_id, ()))
        for user_id in user_ids:
            ending.update(self._by_user.get(user_id, ()))
        for socket in ending:
            self._end(socket)
        return len(ending)

    async def ended(self, token_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> None:
        """Ends the sockets here at once, and tells the other processes to end theirs."""
        tokens, users = list(token_ids), list(user_ids)
        self.end(tokens, users)
        await announce(self.broadcast, tokens, users)

    def _end(self, socket: OpenSocket) -> None:
        self.remove(socket)
        if socket.ended:
            return
        socket.ended = True
        task = asyncio.get_running_loop().create_task(self._close(socket), name="session-end")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(socket: OpenSocket) -> None:
        try:
            await socket.close()
        except Exception:  # noqa: BLE001 - the client left first: nothing to close
            log.debug("a socket ended before its close was sent")

    async def recheck(self) -> int:
        """Closes the sockets whose token no longer works (revoked, expired, deleted); how many."""
        token_ids = sorted(self._by_token)
        if not token_ids:
            return 0
        now = utcnow()
        valid: set[str] = set()
        for start in range(0, len(token_ids), RECHECK_BATCH):
            valid.update(token.id for token in await working_tokens(token_ids[start : start + RECHECK_BATCH], now))
        gone = set(token_ids) - valid
        if not gone:
            return 0
        if self.token_cache is not None:
            self.token_cache.forget(gone)  # what the database says now, the cache says too
        return self.end(gone)

    async def recheck_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self.recheck()
            except Exception as exc:  # noqa: BLE001 - the database is away: the next round tries again
                if not failing:
                    log.warning("open sockets not re-checked (%s); trying again", type(exc).__name__)
                failing = True
                continue
            failing = False
            self.rechecks += 1

    async def listen_forever(self) -> None:
        """Ends sockets on each notice; after a pub/sub outage (its resync, an empty message),
        re-checks them all, since a notice may have been missed meanwhile."""
        async with self.broadcast.subscribe(CHANNEL) as subscriber:
            async for event in subscriber:  # type: ignore[union-attr] # broadcaster's own annotation
                parsed = _parsed(event.message) if event is not None else None
                if parsed is None:
                    if self.token_cache is not None:
                        self.token_cache.clear()
                    await self.recheck()
                else:
                    if self.token_cache is not None:
                        self.token_cache.noticed(*parsed)
                    self.end(*parsed)


def _discard(index: dict[str, set[OpenSocket]], key: str, socket: OpenSocket) -> None:
    held = index.get(key)
    if held is not None:
        held.discard(socket)
        if not held:
            del index[key]


def _parsed(message: Any) -> tuple[list[str], list[str]] | None:
    try:
        body = json.loads(message)
        tokens, users = body["tokens"], body["users"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(tokens, list) and isinstance(users, list)):
        return None
    return [str(t) for t in tokens], [str(u) for u in users]
