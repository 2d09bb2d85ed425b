"""Recording runs: the run history, the plugins' writes, the install's counters and circuit
breaker (app/plugins/run_counts.py), and the inbox events they finish, in one transaction for many
runs at once (app/plugins/run_groups.py gathers them).

Exactly once: a run's record is inserted with `ON CONFLICT DO NOTHING`; only the runs whose record
was inserted apply their writes and count. A run recorded by another process meanwhile (the
same event claimed again after a lease ran out) changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.gateways import inbox
from app.gateways.inbox import ClaimedEvent
from app.ids import new_ordered_id
from app.plugins.breaker import Breaker
from app.plugins.contract import BatchedWrite, ExecutionResult, PluginContext, RunTrigger
from app.plugins.models import RunOutcome, RunRecord, UserPlugin
from app.plugins.routing import InstallRoute
from app.plugins.run_context import used_storage
from app.plugins.run_counts import count_runs
from app.plugins.run_output import stored_error, stored_output
from app.plugins.storage import flush_together
from app.sql import insert_rows

ERROR_LIMIT = 2_000
MAX_TOKENS = 2**31 - 1  # what the record's column (and GraphQL's Int) holds
MAX_ROWS_PER_INSERT = 1_000


@dataclass(frozen=True)
class Origin:
    """What a run is for: its event, the key that makes it once-only, and what a retry needs."""

    key: str
    trigger: RunTrigger
    event_type: str
    chat_id: int | None = None
    gateway_event_id: int | None = None
    schedule: str | None = None
    fired_at: datetime | None = None
    retry_of: str | None = None
    replay: bool = True  # it may have run before: look for its record first
    workflow_run_id: str | None = None  # a chain's step: the chain's run, and its place in it
    step_index: int | None = None


@dataclass(slots=True)
class Run:
    """One install's run for one event (or a skip), not yet recorded."""

    install: InstallRoute
    origin: Origin
    outcome: RunOutcome
    duration_ms: float = 0.0
    error: str | None = None
    output: str | None = None  # as JSON text, bounded and redacted (app/plugins/run_output.py)
    ctx: PluginContext | None = None  # its buffered writes; applied only if it succeeded
    id: str = field(default_factory=new_ordered_id)
    # When it finished: the run history's order (runs recorded in one commit keep their own order).
    created_at: datetime | None = None
    api_calls: int = 0
    tokens_used: int | None = None
    # The output as the plugin answered it, for a chain's next step; not recorded (`output` is).
    value: Any = None

    @classmethod
    def of(
        cls,
        install: InstallRoute,
        origin: Origin,
        result: ExecutionResult,
        ctx: PluginContext | None,
        secrets: Collection[str],
        finished: datetime,
    ) -> Run:
        """The run `result` describes; its writes (`ctx`) are kept only when it succeeded."""
        metrics, output, error = result.metrics, result.output, result.error
        return cls(
            install,
            origin,
            RunOutcome.SUCCEEDED if result.success else RunOutcome.FAILED,
            metrics.duration_ms,
            None if error is None else stored_error(error, secrets),
            None if output is None else stored_output(output, secrets),
            ctx if result.success else None,
            created_at=finished,
            api_calls=metrics.api_calls,
            tokens_used=None if metrics.tokens_used is None else reported_tokens(metrics.tokens_used),
            value=output,
        )

    @property
    def ran(self) -> bool:
        return self.outcome != RunOutcome.SKIPPED


_RUN_COLUMNS = (
    "id",
    "install_id",
    "event_key",
    "success",
    "outcome",
    "trigger",
    "event_type",
    "chat_id",
    "gateway_event_id",
    "schedule",
    "fired_at",
    "retry_of",
    "error",
    "duration_ms",
    "created_at",
)
_RUN_TYPES = (
    "text",
    "text",
    "text",
    "boolean",
    "text",
    "text",
    "text",
    "bigint",
    "bigint",
    "text",
    "timestamptz",
    "text",
    "text",
    "double precision",
    "timestamptz",
)
# What most runs of an event leave at the column's default (no output, no calls, no chain): sent only
# when a run of the chunk has one, so that the event path's insert carries no column of NULLs.
_RESULT_COLUMNS = ("output", "api_calls", "tokens_used", "workflow_run_id", "step_index")
_RESULT_TYPES = ("jsonb", "integer", "integer", "text", "integer")
# What the runs of one commit mostly share (one owner's install, how they ran and why): sent once
# when every run of the chunk has the same value (`insert_rows`' uniform).
_SHARED_COLUMNS = frozenset(
    ("install_id", "success", "outcome", "trigger", "event_type", "schedule", "fired_at", "retry_of", "error")
    + _RESULT_COLUMNS
)


class RunRecorder:
    def __init__(self, breaker: Breaker, notify: Callable[[str, str, str], None]) -> None:
        self.breaker = breaker
        self.notify = notify  # (user id, plugin slug, topic), once a run's writes are committed

    async def claim(self, run: Run) -> bool:
        """Records `run` as RUNNING before it runs, so that it runs once however many callers ask
        at the same time (a retry); False when its key was taken. `record(claimed=True)` finishes it."""
        claimed = Run(run.install, run.origin, RunOutcome.RUNNING, id=run.id)
        return bool(await self._insert(UserPlugin._meta.db, [claimed], utcnow()))

    async def record(self, runs: Sequence[Run], done: Sequence[ClaimedEvent] = (), claimed: bool = False) -> list[Run]:
        """Records `runs` and marks `done` events finished, in one transaction; returns the runs
        recorded now (not those recorded before). `claimed`: the runs were claimed (`claim`), and
        their RUNNING records are completed."""
        now = utcnow()
        async with in_transaction() as conn:
            recorded = await (self._complete(runs, now) if claimed else self._insert(conn, runs, now))
            succeeded = [run for run in recorded if run.outcome == RunOutcome.SUCCEEDED and run.ctx is not None]
            await apply_writes([run.ctx for run in succeeded if run.ctx is not None])
            await count_runs(((run.install, run.outcome, run.error) for run in recorded if run.ran), now, self.breaker)
            await inbox.complete_all(done, now)
        for run in succeeded:
            assert run.ctx is not None
            for topic in run.ctx.topics:
                self.notify(run.install.user_id, run.install.slug, topic)
        return recorded

    async def _complete(self, runs: Sequence[Run], now: datetime) -> list[Run]:
        completed = []
        for run in runs:
            if await RunRecord.filter(id=run.id, outcome=RunOutcome.RUNNING).update(
                outcome=run.outcome,
                success=run.outcome == RunOutcome.SUCCEEDED,
                error=run.error,
                duration_ms=run.duration_ms,
                created_at=now,
                output=None if run.output is None else json.loads(run.output),
                api_calls=run.api_calls,
                tokens_used=run.tokens_used,
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
                    run.id,
                    run.install.id,
                    o.key,
                    run.outcome == RunOutcome.SUCCEEDED,
                    run.outcome.value,
                    o.trigger,
                    o.event_type,
                    o.chat_id,
                    o.gateway_event_id,
                    o.schedule,
                    o.fired_at,
                    o.retry_of,
                    run.error,
                    run.duration_ms,
                    run.created_at or now,
                ]
                for run in chunk
                for o in (run.origin,)
            ]
            columns: tuple[str, ...] = _RUN_COLUMNS
            types: tuple[str, ...] = _RUN_TYPES
            if any(_has_results(run) for run in chunk):
                columns, types = columns + _RESULT_COLUMNS, types + _RESULT_TYPES
                for row, run in zip(rows, chunk, strict=True):
                    o = run.origin
                    row += [run.output, run.api_calls, run.tokens_used, o.workflow_run_id, o.step_index]
            inserted = await insert_rows(
                conn,
                RunRecord._meta.db_table,
                columns,
                rows,
                "ON CONFLICT (install_id, event_key) DO NOTHING",
                returning="id",
                types=types,
                uniform=_SHARED_COLUMNS,
            )
            recorded.update(row["id"] for row in inserted)
        result = [by_id[run_id] for run_id in by_id if run_id in recorded]
        for run in result:
            run.created_at = run.created_at or now
        return result


async def apply_writes(contexts: list[PluginContext]) -> None:
    """The runs' storage writes merged, then their own writes: batched ones one call per kind
    (call inside a transaction). Nothing is consumed: when the transaction fails to commit, a retry
    applies the same writes again, never none of them."""
    await flush_together([storage for ctx in contexts if (storage := used_storage(ctx)) is not None])
    batches: dict[Callable[[list[Any]], Awaitable[None]], list[Any]] = {}
    for ctx in contexts:
        for write in ctx.writes:
            if isinstance(write, BatchedWrite):
                batches.setdefault(write.apply, []).append(write.item)
            else:
                await write()
    for apply, items in batches.items():
        await apply(items)


def _has_results(run: Run) -> bool:
    return (
        run.output is not None
        or run.api_calls != 0
        or run.tokens_used is not None
        or run.origin.workflow_run_id is not None
    )


def reported_tokens(value: Any) -> int | None:
    """The tokens a plugin reported (`ctx.metrics.tokens_used`) when they are a count the record
    can keep, a whole number from 0 to MAX_TOKENS; anything else is as if it reported none: the
    plugin's mistake must not cost its run's record."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_LIMIT]
