"""Live updates: "something changed" notices from whichever process ran a plugin, to the
subscribers of any process, through broadcaster (memory:// in one process, Redis across many).

A notice carries no data, only the channel: a subscriber reads the current state itself. So
notices can be coalesced and lost without harm: the next one, or the resync after a Redis outage,
brings the subscriber up to date.

`SharedStates` lets many subscribers of the same stream of states share one producer: one read
and one rendering per change, however many sockets show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable
from typing import Any, Generic, TypeVar

from broadcaster import Broadcast

log = logging.getLogger(__name__)

T = TypeVar("T")


# The topic of a notice that an install's config changed (app/plugins/service.py sends it).
CONFIG_TOPIC = "config"


def channel(user_id: str, slug: str, topic: str) -> str:
    return f"plugboard:{user_id}:{slug}:{topic}"


class Changes:
    """Wake-ups of one subscription: many notices between two waits count as one. Which of its
    channels had a notice is kept until taken, so one subscription serves a watcher that reacts to
    some channels differently."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self._noticed: set[str] = set()  # at most the channels watched

    def mark(self, channel: str) -> None:
        self._noticed.add(channel)
        self._changed.set()

    async def wait(self) -> None:
        await self._changed.wait()
        self._changed.clear()

    def take(self, *channels: str) -> bool:
        """Whether a notice came on any of `channels` since they were last taken (without waiting)."""
        noticed = not self._noticed.isdisjoint(channels)
        self._noticed.difference_update(channels)
        return noticed


class LiveUpdates:
    def __init__(self, broadcast: Broadcast) -> None:
        self.broadcast = broadcast
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_failure_log = 0.0
        self.shared = SharedStates()

    async def start(self) -> None:
        await self.broadcast.connect()
        self._task = asyncio.create_task(self._publish_forever(), name="live-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.broadcast.disconnect()

    def notify(self, channel_name: str) -> None:
        """Never waits and never fails: the publisher task sends it (once per burst)."""
        self._dirty.add(channel_name)
        self._wake.set()

    async def _publish_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            channels, self._dirty = self._dirty, set()
            for name in channels:
                try:
                    await self.broadcast.publish(name, "changed")
                except Exception as exc:  # pub/sub down: subscribers resync when it returns
                    now = time.monotonic()
                    if now - self._last_failure_log > 30:
                        self._last_failure_log = now
                        log.warning("live update not published (%s); subscribers resync later", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def watch(self, *channel_names: str) -> AsyncIterator[Changes]:
        """One wake-up for a notice on any of the channels (each subscribed once)."""
        changes = Changes()
        async with contextlib.AsyncExitStack() as stack:
            readers = []
            for name in dict.fromkeys(channel_names):
                subscriber = await stack.enter_async_context(self.broadcast.subscribe(name))
                readers.append(asyncio.create_task(self._forward(subscriber, name, changes)))
            try:
                yield changes
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)

    @staticmethod
    async def _forward(subscriber: Any, channel: str, changes: Changes) -> None:
        async for _ in subscriber:
            changes.mark(channel)


class _Follower(Generic[T]):
    __slots__ = ("seen", "take", "waiting", "woken")

    def __init__(self, take: Callable[[T], bool] | None) -> None:
        self.seen = 0  # the version it has had
        self.take = take
        self.waiting = False  # idle, waiting for a newer state
        self.woken = asyncio.Event()


class SharedState(Generic[T]):
    """The latest state of one producer, read by many followers. A follower gets the newest state
    it has not had yet, so a slow one skips states and never falls behind; one that joins late
    starts with the latest state.

    A follower may `take` states as they are published, in the producer's task: while it is idle,
    each new state is offered to `take` first, and the follower's own task wakes only for one that
    `take` leaves (False). A follower busy with a state is never offered the next: it has it from
    its own task, in order, once done."""

    def __init__(self) -> None:
        self.version = 0
        self.state: T | None = None
        self.finished = False
        self.followers = 0
        self.tags: Counter[Hashable] = Counter()  # what the followers said of themselves, with how many said it
        self.task: asyncio.Task[None] | None = None
        self._following: set[_Follower[T]] = set()

    def publish(self, state: T) -> None:
        self.version += 1
        self.state = state
        for follower in list(self._following):
            if follower.waiting and follower.take is not None and _took(follower.take, state):
                follower.seen = self.version
            else:
                follower.woken.set()

    def finish(self) -> None:
        self.finished = True
        for follower in self._following:
            follower.woken.set()

    async def follow(self, take: Callable[[T], bool] | None = None) -> AsyncIterator[T]:
        follower: _Follower[T] = _Follower(take)
        self._following.add(follower)
        try:
            while True:
                if self.version > follower.seen:
                    follower.seen = self.version
                    yield self.state  # type: ignore[misc]
                elif self.finished:
                    return
                else:
                    follower.woken.clear()
                    follower.waiting = True
                    try:
                        await follower.woken.wait()
                    finally:
                        follower.waiting = False
        finally:
            self._following.discard(follower)


def _took(take: Callable[[T], bool], state: T) -> bool:
    """`take(state)`; a take that fails leaves the state to its follower's own task (a bug of one
    follower must not end the producer that every follower shares)."""
    try:
        return take(state)
    except Exception:
        log.exception("a live follower failed to take a state; its own task takes it")
        return False


class SharedStates:
    """Producers of states by key, each run once for all the followers of its key, for as long as
    it has one."""

    def __init__(self) -> None:
        self._states: dict[Hashable, SharedState[object]] = {}

    def __len__(self) -> int:
        return len(self._states)

    def tags(self, key: Hashable) -> list[Hashable]:
        """The tags of `key`'s followers now (each once), for its producer to act on."""
        shared = self._states.get(key)
        return list(shared.tags) if shared is not None else []

    @contextlib.asynccontextmanager
    async def follow(
        self,
        key: Hashable,
        produce: Callable[[], AsyncGenerator[T, None]],
        tag: Hashable | None = None,
        take: Callable[[T], bool] | None = None,
    ) -> AsyncIterator[AsyncIterator[T]]:
        """The states of `key`'s producer, started with `produce` unless one is running. `tag`:
        what the producer may know of this follower while it follows (`tags`); `take`: handles a
        state in the producer's task while this follower is idle (SharedState)."""
        shared = self._states.get(key)
        if shared is None:
            shared = self._states[key] = SharedState()
            shared.task = asyncio.create_task(self._run(key, shared, produce), name="live-shared-state")
        shared.followers += 1
        if tag is not None:
            shared.tags[tag] += 1
        states = shared.follow(take)  # type: ignore[arg-type]
        try:
            yield states  # type: ignore[misc]
        finally:
            await states.aclose()  # type: ignore[attr-defined]
            shared.followers -= 1
            if tag is not None:
                shared.tags[tag] -= 1
                if shared.tags[tag] <= 0:
                    del shared.tags[tag]
            if shared.followers == 0:
                self._forget(key, shared)
                if shared.task is not None:
                    shared.task.cancel()
                    await asyncio.gather(shared.task, return_exceptions=True)

    async def _run(self, key: Hashable, shared: SharedState[T], produce: Callable[[], AsyncGenerator[T, None]]) -> None:
        try:
            async with contextlib.aclosing(produce()) as states:
                async for state in states:
                    if shared.version == 0 or state != shared.state:  # the same state again is no news
                        shared.publish(state)
        except Exception:  # its followers end as the stream would have; the next follower starts anew
            log.exception("a shared live stream failed")
        finally:
            self._forget(key, shared)
            shared.finish()

    def _forget(self, key: Hashable, shared: SharedState[Any]) -> None:
        if self._states.get(key) is shared:
            del self._states[key]
