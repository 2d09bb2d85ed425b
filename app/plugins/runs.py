"""Recording runs: the run history, the plugins' writes, the install's counters and circuit
breaker, and the inbox events they finish, in one transaction for many runs at once.

Exactly once: a run's record is inserted with `ON CONFLICT DO NOTHING`; only the runs whose record
was inserted apply their writes and count. A run recorded by another process meanwhile (the
same event claimed again after a lease ran out) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import timezone
from tortoise.transactions import in_transaction

from app.db_errors import describe, is_unavailable
from app.gateways.inbox import ClaimedEvent
from app.gateways.models import EventStatus, GatewayEvent
from app.ids import new_id
from app.plugins.breaker import Breaker, Counted
from app.plugins.contract import BatchedWrite, PluginContext, Trigger
from app.plugins.models import InstallStatus, PluginExecution, RunOutcome, UserPlugin
from app.plugins.routing import InstallRoute
from app.plugins.storage import InstallStorage, flush_together
from app.sql import insert_rows
from app.supervision import start_supervised

log = logging.getLogger(__name__)

ERROR_LIMIT = 2_000
MAX_ROWS_PER_INSERT = 1_000


@dataclass(frozen=True)
class Origin:
    """What a run is for: its event, the key that makes it once-only, and what a retry needs."""

    key: str
    trigger: Trigger
    event_type: str
    chat_id: int | None = None
    gateway_event_id: int | None = None
    schedule: str | None = None
    fired_at: datetime | None = None
    retry_of: str | None = None
    replay: bool = True  # it may have run before: look for its record first


@dataclass
class Run:
    """One install's run for one event (or a skip), not yet recorded."""

    install: InstallRoute
    origin: Origin
    outcome: RunOutcome
    duration_ms: float = 0.0
    error: str | None = None
    output: Any = None
    ctx: PluginContext | None = None  # its buffered writes; applied only if it succeeded
    id: str = field(default_factory=new_id)
    # When it finished: the run history's order (runs recorded in one commit keep their own order).
    created_at: datetime | None = None

    @property
    def ran(self) -> bool:
        return self.outcome != RunOutcome.SKIPPED


_RUN_COLUMNS = (
    "id", "install_id", "event_key", "success", "outcome", "trigger", "event_type", "chat_id",
    "gateway_event_id", "schedule", "fired_at", "retry_of", "error", "duration_ms", "created_at",
)
_RUN_TYPES = (
    "text", "text", "text", "boolean", "text", "text", "text", "bigint",
    "bigint", "text", "timestamptz", "text", "text", "double precision", "timestamptz",
)


class RunRecorder:
    def __init__(self, breaker: Breaker, notify: Callable[[str, str, str], None]) -> None:
        self.breaker = breaker
        self.notify = notify  # (user id, plugin slug, topic), once a run's writes are committed

    async def claim(self, run: Run) -> bool:
        """Records `run` as RUNNING before it runs, so that it runs once however many callers ask
        at the same time (a retry); False when its key was taken. `record(claimed=True)` finishes it."""
        claimed = Run(run.install, run.origin, RunOutcome.RUNNING, id=run.id)
        return bool(await self._insert(UserPlugin._meta.db, [claimed], timezone.now()))

    async def record(
        self, runs: Sequence[Run], done: Sequence[ClaimedEvent] = (), claimed: bool = False
    ) -> list[Run]:
        """Records `runs` and marks `done` events finished, in one transaction; returns the runs
        recorded now (not those recorded before). `claimed`: the runs were claimed (`claim`), and
        their RUNNING records are completed."""
        now = timezone.now()
        async with in_transaction() as conn:
            recorded = await (self._complete(runs, now) if claimed else self._insert(conn, runs, now))
            succeeded = [run for run in recorded if run.outcome == RunOutcome.SUCCEEDED and run.ctx is not None]
            await apply_writes([run.ctx for run in succeeded if run.ctx is not None])
            await self._count(recorded, now)
            await _finish_events(done, now)
        for run in succeeded:
            assert run.ctx is not None
            for topic in run.ctx.topics:
                self.notify(run.install.user_id, run.install.slug, topic)
        return recorded

    async def _complete(self, runs: Sequence[Run], now: datetime) -> list[Run]:
        completed = []
        for run in runs:
            if await PluginExecution.filter(id=run.id, outcome=RunOutcome.RUNNING).update(
                outcome=run.outcome, success=run.outcome == RunOutcome.SUCCEEDED, error=run.error,
                duration_ms=run.duration_ms, created_at=now,
            ):
                run.created_at = now
                completed.append(run)
        return completed

    async def _insert(self, conn: Any, runs: Sequence[Run], now: datetime) -> list[Run]:
        by_id = {run.id: run for run in runs}
        recorded: set[str] = set()
        for start in range(0, len(runs), MAX_ROWS_PER_INSERT):
            chunk = runs[start : start + MAX_ROWS_PER_INSERT]
            rows = [
                [
                    run.id, run.install.id, o.key, run.outcome == RunOutcome.SUCCEEDED, run.outcome.value,
                    o.trigger, o.event_type, o.chat_id, o.gateway_event_id, o.schedule, o.fired_at,
                    o.retry_of, run.error, run.duration_ms, run.created_at or now,
                ]
                for run in chunk
                for o in (run.origin,)
            ]
            inserted = await insert_rows(
                conn, PluginExecution._meta.db_table, _RUN_COLUMNS, rows,
                "ON CONFLICT (install_id, event_key) DO NOTHING", returning="id", types=_RUN_TYPES,
            )
            recorded.update(row["id"] for row in inserted)
        result = [by_id[run_id] for run_id in by_id if run_id in recorded]
        for run in result:
            run.created_at = run.created_at or now
        return result

    async def _count(self, recorded: list[Run], now: datetime) -> None:
        """Each install's run count, last error and failures in a row (one statement on
        PostgreSQL, one per install on SQLite); then opens or closes breakers."""
        tallies: dict[str, _Tally] = {}
        for run in recorded:
            if run.ran:
                tallies.setdefault(run.install.id, _Tally(run.install)).add(run)
        if not tallies:
            return
        connection = UserPlugin._meta.db
        rows: list[dict[str, Any]] = []
        if connection.capabilities.dialect == "postgres":
            tally_list = list(tallies.values())
            rows = await connection.execute_query_dict(
                _COUNT_POSTGRES,
                [
                    now,
                    [t.route.id for t in tally_list],
                    [t.runs for t in tally_list],
                    [t.last_error for t in tally_list],
                    [t.succeeded for t in tally_list],
                    [t.trailing for t in tally_list],
                ],
            )
        else:
            for t in tallies.values():
                params = [t.runs, now, t.last_error, t.succeeded, t.trailing, t.trailing, t.route.id]
                rows += await connection.execute_query_dict(_COUNT_SQLITE, params)
        for row in rows:
            tally = tallies[row["id"]]
            counted = Counted(row["consecutive_failures"], InstallStatus(row["status"]), float(row["backoff_seconds"]))
            if self.breaker.concerns(counted):
                await self.breaker.judge(tally.route, counted, tally.succeeded, tally.last_error, now)


async def apply_writes(contexts: list[PluginContext]) -> None:
    """The runs' storage writes merged, then their own writes: batched ones one call per kind
    (call inside a transaction). Nothing is consumed: when the transaction fails to commit, a retry
    applies the same writes again, never none of them."""
    await flush_together([ctx.storage for ctx in contexts if isinstance(ctx.storage, InstallStorage)])
    batches: dict[Callable[[list[Any]], Awaitable[None]], list[Any]] = {}
    for ctx in contexts:
        for write in ctx.writes:
            if isinstance(write, BatchedWrite):
                batches.setdefault(write.apply, []).append(write.item)
            else:
                await write()
    for apply, items in batches.items():
        await apply(items)


async def _finish_events(events: Sequence[ClaimedEvent], now: datetime) -> None:
    """Marks the events done, if this process still holds them: one statement per claim."""
    by_claim: dict[str, list[int]] = {}
    for event in events:
        by_claim.setdefault(event.claim, []).append(event.id)
    conn = GatewayEvent._meta.db
    for claim, ids in by_claim.items():
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query(
                "UPDATE gateway_events SET status = 'done', processed_at = $1, lease_until = NULL "
                "WHERE id = ANY($2::bigint[]) AND claim = $3",
                [now, ids, claim],
            )
        else:
            await GatewayEvent.filter(id__in=ids, claim=claim).update(
                status=EventStatus.DONE, processed_at=now, lease_until=None
            )


@dataclass
class _Tally:
    """What one commit's runs of one install add up to."""

    route: InstallRoute
    runs: int = 0
    succeeded: bool = False  # any run succeeded: failures in a row restart from the last success
    trailing: int = 0  # failures after the last success
    last_error: str | None = None

    def add(self, run: Run) -> None:
        self.runs += 1
        self.last_error = run.error
        if run.outcome == RunOutcome.SUCCEEDED:
            self.succeeded, self.trailing = True, 0
        else:
            self.trailing += 1


_COUNT_POSTGRES = """
UPDATE user_plugins AS u SET
    execution_count = u.execution_count + v.runs,
    last_executed_at = $1,
    last_error = v.last_error,
    consecutive_failures = CASE WHEN v.succeeded THEN v.failures ELSE u.consecutive_failures + v.failures END
FROM unnest($2::text[], $3::int[], $4::text[], $5::boolean[], $6::int[]) AS v(id, runs, last_error, succeeded, failures)
WHERE u.id = v.id
RETURNING u.id, u.consecutive_failures, u.status, u.backoff_seconds
"""
_COUNT_SQLITE = """
UPDATE user_plugins SET execution_count = execution_count + ?, last_executed_at = ?, last_error = ?,
    consecutive_failures = CASE WHEN ? THEN ? ELSE consecutive_failures + ? END
WHERE id = ? RETURNING id, consecutive_failures, status, backoff_seconds
"""


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_LIMIT]


@dataclass
class _Pending:
    runs: list[Run]
    done: list[ClaimedEvent]
    future: asyncio.Future[list[Run]]


class RecordingGroups:
    """Records the runs of many lanes together: each lane waits for its own result, and whatever
    lanes finished meanwhile are committed in one transaction (a group commit)."""

    def __init__(self, recorder: RunRecorder, max_runs: int = 2_000) -> None:
        self.recorder = recorder
        self.max_runs = max_runs
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._context = contextvars.copy_context()

    def start(self) -> None:
        self._context = contextvars.copy_context()
        self._task = start_supervised("run-recorder", self._run)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for pending in self._queue:
            pending.future.cancel()
        self._queue.clear()

    async def record(self, runs: list[Run], done: list[ClaimedEvent]) -> list[Run]:
        if self._task is None:  # not started (a test's own dispatcher): record alone
            return await self.recorder.record(runs, done)
        pending = _Pending(runs, done, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._wake.set()
        return await pending.future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group: list[_Pending] = []
                size = 0
                while self._queue and (not group or size + len(self._queue[0].runs) <= self.max_runs):
                    pending = self._queue.pop(0)
                    if not pending.future.done():  # its lane went away
                        group.append(pending)
                        size += len(pending.runs)
                if group:
                    await self._commit(group)

    async def _commit(self, group: list[_Pending]) -> None:
        # Each commit in a copy of the context this recorder started in: whatever a failed commit
        # might leave in its task's context (a transaction on a connection that died), the next
        # commit never sees it.
        record = self.recorder.record([run for p in group for run in p.runs], [event for p in group for event in p.done])
        try:
            recorded = await asyncio.get_running_loop().create_task(record, context=self._context.copy())
        except Exception as exc:
            if len(group) == 1 or is_unavailable(exc):
                for pending in group:
                    _settle(pending, error=exc)
                return
            # One lane's runs broke the group (a plugin's write that fails): each on its own.
            log.warning("a group of %d recordings failed, recording each alone: %s", len(group), describe(exc))
            for pending in group:
                await self._commit([pending])
            return
        ids = {run.id for run in recorded}
        for pending in group:
            _settle(pending, [run for run in pending.runs if run.id in ids])


def _settle(pending: _Pending, result: list[Run] | None = None, error: BaseException | None = None) -> None:
    if pending.future.done():
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result or [])
