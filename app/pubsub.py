"""Pub/sub between processes, through broadcaster: `memory://` in one process, Redis when scaled out.

broadcaster 0.3.1's own `redis://` backend loses its subscription (its listener can start before
SUBSCRIBE completes, ends and never starts again) and no backend of it reconnects. Ours subscribes
before it listens, and after Redis restarts it reconnects, subscribes again and tells every channel
to resync, since what was published while Redis was down is gone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from broadcaster import Broadcast, BroadcastBackend, Event
from redis import asyncio as aioredis

log = logging.getLogger(__name__)

# The message a channel gets after a reconnect: whatever it publishes may have been missed.
RESYNC = ""
KEEPALIVE_CHANNEL = "plugboard:pubsub:alive"


class RedisPubSubBackend(BroadcastBackend):
    def __init__(self, url: str, max_backoff_seconds: float = 5.0) -> None:
        self._url = url
        self._max_backoff = max_backoff_seconds
        self._publisher = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    async def connect(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._listen_forever(), name="pubsub-listener")

    async def disconnect(self) -> None:
        self._stopping = True
        if self._task is not None:
            # redis-py reads under a timeout of its own: a cancel that arrives as that timeout fires
            # is swallowed (Python 3.11's timeouts turn it into a TimeoutError), and the listener
            # would read on. It also stops at its next turn by the flag; the cancel is repeated.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
        await self._publisher.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.subscribe(channel)
            except Exception:  # the listener subscribes again when it reconnects
                log.debug("subscribe to %s deferred until Redis answers", channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(channel)
            except Exception:
                pass

    async def publish(self, channel: str, message: Any) -> None:
        await self._publisher.publish(channel, message)

    async def next_published(self) -> Event:
        return await self._queue.get()

    async def _listen_forever(self) -> None:
        backoff = 0.1
        reconnecting = False
        while not self._stopping:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=2, health_check_interval=5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribed before listening; the keep-alive channel holds the connection open
                # even while no one listens to anything.
                wanted = set(self._channels)
                await pubsub.subscribe(KEEPALIVE_CHANNEL, *wanted)
                self._pubsub = pubsub
                if late := self._channels - wanted:  # subscribed to while we were connecting
                    await pubsub.subscribe(*late)
                self.connected.set()
                if reconnecting:
                    log.info("pub/sub reconnected to Redis; %d channel(s) resubscribed", len(self._channels))
                    for channel in list(self._channels):
                        self._queue.put_nowait(Event(channel, RESYNC))
                backoff = 0.1
                while not self._stopping:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        channel = message["channel"].decode()
                        if channel != KEEPALIVE_CHANNEL:
                            self._queue.put_nowait(Event(channel, message["data"].decode()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set() or not reconnecting:
                    log.warning("pub/sub lost Redis (%s); reconnecting", exc.__class__.__name__)
                reconnecting = True
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                self._pubsub = None
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass


def create_broadcast(url: str) -> Broadcast:
    """A Broadcast for BROADCAST_URL: `memory://`, or `redis://…` (`rediss://…`) with our backend."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return Broadcast(backend=RedisPubSubBackend(url))
    if scheme == "memory":
        return Broadcast(url)
    raise ValueError(f"BROADCAST_URL must be memory:// or redis://…, not {scheme or url!r}")
