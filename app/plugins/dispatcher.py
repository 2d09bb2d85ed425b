"""Takes committed gateway events from the inbox and routes them, one chat's events in order.

Any number of processes may run a dispatcher on one database: each claims its own events,
and an event whose process died is claimed again once its lease runs out.

When the database goes away, nothing is lost and nothing runs twice. A lane that cannot route its
event or record the outcome waits, holding no slot, until the database answers again, then goes
on where it stopped (a rerun is a replay, so a run already recorded is not repeated). If the
event's lease runs out first, the lane lets go: that event is claimable again, and the events
queued behind it, never started, are given back before this dispatcher claims anything again
(and so are the chat's events that a claim under way meanwhile took), so the chat's events are
claimed again in order. Every event taken into memory leaves it exactly once, so the capacity
count never drifts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from pydantic import ValidationError

from app.batching import GroupCommit
from app.clock import utcnow
from app.db_errors import describe, is_unavailable
from app.gateways import inbox
from app.gateways.inbox import ClaimedEvent
from app.gateways.inbox_writer import InboxWriter
from app.plugins.claim_budget import ClaimBudget
from app.plugins.contract import RunTrigger
from app.plugins.database_watch import DatabaseWatch, always_answers
from app.plugins.events import load_parsers, stored_event
from app.plugins.pruning import prune_forever
from app.plugins.router import EventRouter, Storages
from app.plugins.run_groups import Recording
from app.plugins.runs import Origin, Run
from app.supervision import Heartbeat, cancel, spawn, start_supervised

log = logging.getLogger(__name__)

QUIET_LOG_SECONDS = 30.0
ODD_FAILURE_RETRIES = 3
LEASE_MARGIN_SECONDS = 0.01
# Claimed events held per slot of concurrency: a claim that big fills the lanes, so that a lane has
# several events of its chat to run and record together. A process that finishes events fast holds
# up to MOST_EVENTS_PER_SLOT, as long as it gets through them well within a lease (ClaimBudget).
EVENTS_PER_SLOT = 32
MOST_EVENTS_PER_SLOT = 128
# At most this many of a chat's events are run back to back and recorded in one commit.
LANE_BATCH = 64
MISSED_BEATS = 3  # a loop is stalled once this many of its intervals (and the grace) pass without a beat

LaneKey = tuple[str, int | None]
Outcome = Callable[[ClaimedEvent], Awaitable[None]]
BatchOutcome = Callable[[], Awaitable[None]]


@dataclass
class Lane:
    """One chat's claimed events, run in order by one task."""

    key: LaneKey
    events: deque[ClaimedEvent] = field(default_factory=deque)  # claimed, not started
    task: asyncio.Task[None] | None = None
    busy_since: float | None = None  # when the current event got its slot (monotonic)
    failing: bool = False  # waiting for the database to take the current event's outcome

    def stuck(self, now: float, window: float) -> bool:
        return self.failing or (self.busy_since is not None and now - self.busy_since > window)


class Dispatcher:
    def __init__(
        self,
        router: EventRouter,
        writer: InboxWriter,
        commits: GroupCommit[Recording, list[Run]],
        concurrency: int,
        lease_seconds: float,
        poll_seconds: float,
        *,
        retention_hours: float,
        run_history_days: float,
        run_timeout_seconds: float,
        heartbeat_grace_seconds: float,
        database_answers: Callable[[], Awaitable[bool]] = always_answers,
    ) -> None:
        self.router = router
        self.writer = writer
        self.commits = commits
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retention = timedelta(hours=retention_hours)
        self.run_retention = timedelta(days=run_history_days)
        self.database = DatabaseWatch(database_answers, interval=poll_seconds)
        self.heartbeat = Heartbeat("dispatcher", MISSED_BEATS * poll_seconds + heartbeat_grace_seconds)
        # A lane whose event takes longer than this (a run may take the plugin timeout) is stuck.
        self.busy_window = run_timeout_seconds + self.heartbeat.stale_after
        self._lanes: dict[LaneKey, Lane] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        self._budget = ClaimBudget(concurrency * EVENTS_PER_SLOT, concurrency * MOST_EVENTS_PER_SLOT, lease_seconds)
        # Set when there may be work to claim: room freed after a claim that filled it, or a wake-up.
        self._news = asyncio.Event()
        self._room_wanted = False  # the last claim filled what room there was
        self._claim_failures = 0
        self._claim_failure_logged = float("-inf")
        self._let_go: list[ClaimedEvent] = []  # never started, to be given back before the next claim
        self._let_go_chats: set[LaneKey] = set()  # lanes that let go since the last claim began
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        load_parsers(self.router.registry)
        self.heartbeat.beat()
        self.commits.start()
        self._tasks = [
            start_supervised("inbox-dispatcher", self._run),
            start_supervised("inbox-pruner", functools.partial(prune_forever, self.retention, self.run_retention)),
        ]

    async def stop(self) -> None:
        waiting = [*self._let_go, *(event for lane in self._lanes.values() for event in lane.events)]
        self._let_go = []
        lanes = [lane.task for lane in self._lanes.values() if lane.task is not None]
        await cancel([*self._tasks, *lanes])
        self._tasks = []
        await self.commits.stop()
        await self.database.stop()
        # Claimed but not started: give back at once, not after the lease.
        for n, event in enumerate(waiting):
            try:
                await inbox.give_back(event)
            except Exception as exc:
                log.warning(
                    "%d claimed events not given back, claimed again when their lease ends: %s",
                    len(waiting) - n,
                    describe(exc),
                )
                break

    @property
    def capacity(self) -> int:
        return self._budget.limit() - self._in_flight

    @property
    def in_flight(self) -> int:
        """Events claimed and held in memory: queued in a lane or being processed."""
        return self._in_flight

    # -- claiming ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self.writer.written.clear()
            if self.capacity <= 0:
                self._beat_unless_lanes_stuck()  # full: working while the lanes get through it
                self._room_wanted = True
                await self._wait_for_news()
                continue
            asked = self.capacity
            try:
                await self._give_back_let_go()
                claimed = await inbox.claim(asked, self.lease_seconds)
                await self.router.routes.refresh({event.gateway_id for event in claimed})
            except Exception as exc:
                self._claim_failed(exc)
                await asyncio.sleep(self.poll_seconds)
                continue
            self._claim_worked()
            self._enqueue_behind_let_go(claimed)
            if self._let_go:  # a lane let go meanwhile: give back and claim again at once
                continue
            if len(claimed) == asked:  # there may be more: claim again once there is room
                self._room_wanted = True
                if self.capacity > 0:
                    continue
            await self._wait_for_news()

    def _enqueue_behind_let_go(self, claimed: list[ClaimedEvent]) -> None:
        """Enqueues what a claim took, except the events of a chat whose lane let go while the
        claim was under way (the claim may have begun before the lane's lease ran out, and so
        missed its events): those are given back, so that the chat's events are claimed again, and
        run, in order."""
        for event in claimed:
            if (event.gateway_id, event.chat_id) in self._let_go_chats:
                self._let_go.append(event)
            else:
                self._enqueue(event)

    async def _give_back_let_go(self) -> None:
        """Gives back, in order, what lanes let go of during an outage; raises if the database fails.
        The claim that follows begins after the let-go lanes' leases ran out: it sees their events."""
        count = len(self._let_go)
        while self._let_go:
            await inbox.give_back(self._let_go[0])
            self._let_go.pop(0)
        self._let_go_chats.clear()
        if count:
            log.warning("gave back %d events that waited too long for the database; they are claimed again now", count)

    async def _wait_for_news(self) -> None:
        """Until an event may be claimable: this process wrote one, room freed up after a full
        claim, another process said so (`wake`), or the poll interval passed."""
        if self._news.is_set():
            self._news.clear()
            return
        written = asyncio.ensure_future(self.writer.written.wait())
        news = asyncio.ensure_future(self._news.wait())
        try:
            # asyncio.wait, not wait_for: it never swallows a cancellation of this loop.
            await asyncio.wait((written, news), timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            written.cancel()
            news.cancel()
        self._news.clear()

    def wake(self) -> None:
        """Claims at once: events were stored (by any process)."""
        self._news.set()

    def _left(self, count: int = 1) -> None:
        """`count` events left memory; a dispatcher waiting for room claims again once half is free."""
        self._in_flight -= count
        if self._room_wanted and self.capacity >= self._budget.limit() // 2:
            self._room_wanted = False
            self._news.set()

    def _claim_failed(self, exc: Exception) -> None:
        self._claim_failures += 1
        now = time.monotonic()
        if now - self._claim_failure_logged < QUIET_LOG_SECONDS:
            return
        self._claim_failure_logged = now
        if is_unavailable(exc):
            log.warning(
                "claiming inbox events failed (%d times), database unavailable: %s", self._claim_failures, describe(exc)
            )
        else:
            log.error("claiming inbox events failed (%d times)", self._claim_failures, exc_info=exc)

    def _beat_unless_lanes_stuck(self) -> None:
        """Beats unless a lane is stuck: waiting for the database, or on one event for too long."""
        now = time.monotonic()
        if not any(lane.stuck(now, self.busy_window) for lane in self._lanes.values()):
            self.heartbeat.beat()

    def _claim_worked(self) -> None:
        self._beat_unless_lanes_stuck()
        if self._claim_failures:
            log.warning("claiming inbox events works again, after %d failures", self._claim_failures)
            self._claim_failures = 0
            self._claim_failure_logged = float("-inf")

    # -- lanes -------------------------------------------------------------------------------

    def _enqueue(self, event: ClaimedEvent) -> None:
        self._in_flight += 1
        key = (event.gateway_id, event.chat_id)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key)
            lane.task = spawn(self._drain(lane), name=f"inbox-lane-{event.gateway_id}:{event.chat_id}")
            lane.task.add_done_callback(lambda _: self._close(lane))  # also when cancelled before it began
        lane.events.append(event)

    def _close(self, lane: Lane) -> None:
        """Lets go of a lane that ended: what it still held stays claimed until its lease ends."""
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]
        self._left(len(lane.events))
        lane.events.clear()

    async def _drain(self, lane: Lane) -> None:
        try:
            while lane.events:
                batch = [lane.events.popleft() for _ in range(min(len(lane.events), LANE_BATCH))]
                try:
                    finished = await self._finish(lane, batch)
                    if finished:
                        self._budget.finished(len(batch))
                finally:
                    lane.busy_since = None
                    lane.failing = False
                    self._left(len(batch))
                if not finished:
                    log.debug("lane %s let go of %d events", lane.key, len(lane.events) + len(batch))
                    self._let_go_chats.add(lane.key)
                    self._let_go.extend(lane.events)
                    self._left(len(lane.events))
                    lane.events.clear()
                    return
        finally:
            self._close(lane)

    async def _finish(self, lane: Lane, events: list[ClaimedEvent]) -> bool:
        """Routes a chat's events in order and records the outcome, all in one commit. While the
        database is unavailable it waits, holding no slot, and goes on where it stopped; False when
        the events' lease ran out first (they stay claimed until it does)."""
        outcome: BatchOutcome | None = None
        replay = False
        odd_failures = 0
        while True:
            try:
                if outcome is None:
                    async with self._slots:
                        lane.busy_since = time.monotonic()
                        outcome = await self._route_outcome(events, replay)
                await outcome()
                return True
            except Exception as exc:
                lane.failing = True
                replay = True  # a run may have been recorded before the failure
                if is_unavailable(exc) or not await self.database.answers():
                    self.database.lost(exc)
                    if not await self.database.back(within=self._lease_left(events)):
                        if self.database.up:  # it answered all along: no outage kept this from working
                            log.error(
                                "recording the outcome of gateway events %s kept failing while the database "
                                "answered; claimed again now that their lease ended",
                                [event.id for event in events],
                                exc_info=exc,
                            )
                        await self._wait_out_lease(events)
                        return False
                    continue
                # The database answers, yet this failed: a bug (such as a connection used after it
                # was given back). Said loudly once, then tried again; a failure that stays leaves
                # the events to their lease.
                odd_failures += 1
                if odd_failures == 1:
                    log.error(
                        "recording the outcome of gateway events %s failed, though the database answers; trying again",
                        [event.id for event in events],
                        exc_info=exc,
                    )
                if odd_failures <= ODD_FAILURE_RETRIES:
                    await asyncio.sleep(self.poll_seconds)
                    continue
                log.error(
                    "recording the outcome of gateway events %s failed %d times; claimed again when their "
                    "lease ends: %s",
                    [event.id for event in events],
                    odd_failures,
                    describe(exc),
                )
                await self._wait_out_lease(events)  # the events behind them wait
                return False

    async def _wait_out_lease(self, events: list[ClaimedEvent]) -> None:
        """Until the wall clock that claims compare leases with is past the events' lease. A timer
        may end early against it (it runs on the monotonic clock): the events queued behind them,
        given back once this returns, must never be claimable before them."""
        # A clock, not an event: nothing can tell when time has passed but reading it.
        while (left := self._lease_left(events)) >= 0:  # noqa: ASYNC110
            await asyncio.sleep(left + LEASE_MARGIN_SECONDS)

    def _lease_left(self, events: list[ClaimedEvent]) -> float:
        """Seconds until the first of `events`' leases runs out."""
        ends = [event.lease_until for event in events if event.lease_until is not None]
        if not ends:
            return 0.0
        return (min(ends) - utcnow()).total_seconds()

    async def _route_outcome(self, events: list[ClaimedEvent], replay: bool) -> BatchOutcome:
        """Runs the events' plugins, in order; returns how to record the runs and the outcomes.
        Raises when the database is unavailable, so the caller waits for it instead of counting
        an attempt against the events."""
        runs: list[Run] = []
        done: list[ClaimedEvent] = []
        others: list[tuple[ClaimedEvent, Outcome]] = []
        storages: Storages = {}  # a run sees the writes of the runs before it in this commit
        for event in events:
            try:
                runs += await self._route(event, replay or event.attempts > 1, storages)
            except ValidationError:
                log.error("gateway event %s is not a valid %s; dropped", event.id, event.kind.value)
                others.append((event, inbox.fail))
            except Exception as exc:
                if is_unavailable(exc) or not await self.database.answers():
                    raise
                log.exception("routing gateway event %s failed (attempt %d)", event.id, event.attempts)
                others.append((event, inbox.retry_later))
            else:
                done.append(event)

        async def record() -> None:
            if done:
                await self.commits.put(Recording(runs, done))
            for event, outcome in others:
                await outcome(event)

        return record

    async def _route(self, event: ClaimedEvent, replay: bool, storages: Storages) -> list[Run]:
        origin = Origin(
            key=f"{event.kind.value}:{event.gateway_id}:{event.key}",
            trigger=RunTrigger.EVENT,
            event_type="",
            chat_id=event.chat_id,
            gateway_event_id=event.id,
            replay=replay,
        )
        plugin_event = stored_event(event.gateway_id, event.kind, event.payload)
        if plugin_event is None:
            return []
        origin = replace(origin, event_type=plugin_event.type)
        return await self.router.gateway_event(event.gateway_id, plugin_event, origin, storages)
