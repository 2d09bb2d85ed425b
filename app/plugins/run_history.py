"""An install's run history, a page at a time, and retrying a run that failed or was skipped."""

from __future__ import annotations

from datetime import timedelta

from tortoise import timezone

from app import cursors
from app.accounts.context import ServiceContext
from app.audit import writes as audit
from app.errors import BadUserInput, FieldError, NotFound
from app.gateways.models import GatewayEvent
from app.plugins import states
from app.plugins.contract import PluginEvent, RunTrigger
from app.plugins.events import schedule_event, stored_event
from app.plugins.executor import Executor
from app.plugins.models import RETRYABLE, RunOutcome, RunRecord
from app.plugins.routing import InstallRoute
from app.plugins.runs import Origin, Run, RunRecorder
from app.settings import Settings

RUNS_PAGE_MAX = 100


class RunHistory:
    def __init__(self, settings: Settings, executor: Executor, runs: RunRecorder) -> None:
        self.settings = settings
        self.executor = executor
        self.runs = runs

    async def runs_of(
        self, ctx: ServiceContext, install_id: str, first: int = 20, after: str | None = None
    ) -> tuple[list[RunRecord], bool]:
        """A page of an install's runs, newest first, and whether more follow. Keyset paging on
        (created_at, id): the cost of a page does not grow with the history."""
        if not 1 <= first <= RUNS_PAGE_MAX:
            message = f"must be between 1 and {RUNS_PAGE_MAX}"
            raise BadUserInput(f"first {message}", [FieldError("/first", message)])
        query = RunRecord.filter(install_id=install_id, install__user_id=ctx.user_id)
        if after is not None:
            position = cursors.decode(after)
            if position is None:
                message = "is not a cursor from runs"
                raise BadUserInput(f"after {message}", [FieldError("/after", message)])
            query = query.filter(cursors.older_than(position))
        rows = await query.order_by("-created_at", "-id").limit(first + 1)
        return rows[:first], len(rows) > first

    async def retry_run(self, ctx: ServiceContext, run_id: str) -> RunRecord:
        """Runs a failed (or skipped) run's plugin again on the run's stored event, once: a second
        call answers with the same retry. Audited."""
        run = await RunRecord.get_or_none(id=run_id, install__user_id=ctx.user_id).select_related(
            "install", "install__plugin"
        )
        if run is None:
            raise NotFound("No such run")
        if run.outcome not in RETRYABLE:
            raise BadUserInput("Only a failed or skipped run can be retried", [FieldError("/runId", "succeeded")])
        if RunTrigger(run.trigger).on_demand:
            raise BadUserInput(
                "A run on demand is not retried: run the plugin (or the chain) again with its input",
                [FieldError("/runId", "ran on demand")],
            )
        key = f"retry:{run.id}"
        earlier = await RunRecord.get_or_none(install_id=run.install_id, event_key=key)
        if earlier is not None:
            return await self._finished_or_interrupted(earlier)
        install, plugin = run.install, run.install.plugin
        handler = self.executor.registry.get(plugin.slug)
        if handler is None or not plugin.is_active:
            raise BadUserInput("The plugin of this run is no longer available")
        if install.status not in states.RUNNING_STATES:
            raise BadUserInput(f"The plugin is {install.status.value}: {install.status_reason or 'it does not run'}")
        event = await self._stored_event(ctx, run)
        origin = Origin(
            key=key,
            trigger=RunTrigger.RETRY,
            event_type=run.event_type,
            chat_id=run.chat_id,
            gateway_event_id=run.gateway_event_id,
            schedule=run.schedule,
            fired_at=run.fired_at,
            retry_of=run.id,
            replay=False,
        )
        route = InstallRoute.of(install, ctx.plan)
        claim = Run(route, origin, RunOutcome.RUNNING)
        if not await self.runs.claim(claim):  # a concurrent call claimed it first: it runs there
            return await RunRecord.get(install_id=install.id, event_key=key)
        result = await self.executor.run(route, handler, event, origin)
        result.id = claim.id
        recorded = await self.runs.record([result], claimed=True)
        retry = await RunRecord.get(id=claim.id)
        if recorded:
            metadata = {"slug": plugin.slug, "runId": run.id, "retryRunId": retry.id, "outcome": retry.outcome.value}
            await audit.record(ctx, "plugin.run_retry", "plugin", plugin.id, metadata)
        return retry

    async def _finished_or_interrupted(self, retry: RunRecord) -> RunRecord:
        """A retry still RUNNING long after any run could last was cut short (its process died):
        it is recorded as failed."""
        stale = timezone.now() - timedelta(seconds=self.settings.plugin_timeout_seconds * 2 + 60)
        if retry.outcome == RunOutcome.RUNNING and retry.created_at < stale:
            await RunRecord.filter(id=retry.id, outcome=RunOutcome.RUNNING).update(
                outcome=RunOutcome.FAILED, error="Interrupted before it finished"
            )
            return await RunRecord.get(id=retry.id)
        return retry

    async def _stored_event(self, ctx: ServiceContext, run: RunRecord) -> PluginEvent:
        if run.schedule is not None and run.fired_at is not None:
            return schedule_event(run.schedule, run.fired_at)
        row = None
        if run.gateway_event_id is not None:
            row = await GatewayEvent.get_or_none(id=run.gateway_event_id, gateway__owner_id=ctx.user_id)
        if row is None:
            hours = f"{self.settings.inbox_retention_hours:g}"
            raise BadUserInput(f"The event of this run is no longer kept (events are kept {hours} hours)")
        event = stored_event(row.gateway_id, row.kind, row.payload)
        if event is None:
            raise BadUserInput("The event of this run is of a kind no plugin takes any more")
        return event
