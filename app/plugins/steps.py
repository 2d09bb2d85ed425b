"""Runs on demand: one plugin now (`runPlugin`, trigger STANDALONE), or a chain of them, each
step's output the next one's input (`runChain`, trigger WORKFLOW_STEP).

Each step is a run like any other: it goes through the executor (timeout, isolation), is recorded
in its install's run history, counts in `executionCount` and the circuit breaker, and is audited.
Everything the caller sends is checked before anything runs: the installs are the caller's own,
running, with an input schema; every given input fits its schema; the chain's size and time are
bounded; and the caller is within RUNS_PER_MINUTE. A refusal changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from tortoise import timezone

from app.accounts.context import ServiceContext
from app.audit import writes as audit
from app.errors import BadUserInput, FieldError, NotFound, NotInstalled, RateLimited
from app.gateways.limits import Rate, Reservation, SendLimits, Slot
from app.ids import new_id
from app.plugins.config import INPUT, checked_json, validate_config
from app.plugins.contract import ExecutionContext, PluginHandler, RunTrigger
from app.plugins.executor import Executor
from app.plugins.models import InstallStatus, Plugin, RunOutcome, RunRecord, UserPlugin
from app.plugins.router import skipped_run
from app.plugins.routing import InstallRoute
from app.plugins.runs import Origin, Run, RunRecorder
from app.settings import Settings

MAX_STEPS = 10
MAX_VARIABLES_BYTES = 16 * 1024
_NOT_RUNNING = {
    InstallStatus.NEEDS_CONFIG: "needs its settings changed",
    InstallStatus.WAITING_FOR_GATEWAY: "is waiting for a gateway",
}


@dataclass(frozen=True)
class ChainStep:
    plugin_id: str
    input: Any = None  # None: the step before's output


@dataclass(frozen=True)
class ChainResult:
    id: str  # the chain's run: each step's `workflowRunId`
    status: RunOutcome  # SUCCEEDED when every step did, else FAILED
    steps: list[RunRecord]  # in order; those after a failure were not run (SKIPPED)
    output: Any  # the last step's as its record keeps it (bounded, redacted), when every step succeeded


@dataclass(frozen=True)
class _Target:
    install: UserPlugin
    handler: PluginHandler
    input_schema: dict[str, Any]


class StepRunner:
    """Runs on demand (built by app/platform.py, reached as `platform.steps`)."""

    def __init__(self, settings: Settings, executor: Executor, runs: RunRecorder, limits: SendLimits) -> None:
        self.settings = settings
        self.executor = executor
        self.runs = runs
        self.limits = limits  # where each user's runs a minute are counted, as Telegram's limits are
        self.window_seconds = 60.0  # the minute of RUNS_PER_MINUTE (tests make it longer: no turn comes back mid-test)

    async def run_plugin(self, ctx: ServiceContext, plugin_id: str, input: Any) -> RunRecord:
        """Runs the caller's install of the plugin now on `input`; answers the finished run."""
        target = (await self._targets(ctx, [plugin_id], "/pluginId"))[0]
        checked = validate_config(target.input_schema, input, subject=INPUT)
        await self._take_turns(ctx, 1)
        run_id = new_id()
        origin = Origin(key=f"run:{run_id}", trigger=RunTrigger.STANDALONE, event_type="", replay=False)
        execution = ExecutionContext(RunTrigger.STANDALONE, ctx)
        run = await self._run(ctx, target, checked, origin, execution, run_id)
        record = await RunRecord.get(id=run.id)
        metadata = {"slug": target.install.plugin.slug, "runId": record.id, "outcome": record.outcome.value}
        await audit.record(ctx, "plugin.run", "plugin", target.install.plugin_id, metadata)
        return record

    async def run_chain(self, ctx: ServiceContext, steps: list[ChainStep], variables: Any) -> ChainResult:
        """Runs the steps in order, each on its given input or else on the output of the step
        before; the first failure stops the chain, and the steps after it are recorded as not run."""
        if not 1 <= len(steps) <= MAX_STEPS:
            message = f"must list 1 to {MAX_STEPS} steps"
            raise BadUserInput(f"steps {message}", [FieldError("/steps", message)])
        shared = _checked_variables(variables)
        targets = await self._targets(ctx, [step.plugin_id for step in steps], "/steps/{n}/pluginId")
        given = [
            None if step.input is None else _checked_input(target, step.input, f"/steps/{n}/input")
            for n, (step, target) in enumerate(zip(steps, targets, strict=True))
        ]
        await self._take_turns(ctx, len(steps))
        chain_id = new_id()
        workflow_id = _workflow_id(steps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.executor.timeout_seconds * len(steps), self.settings.chain_max_seconds)
        previous: Any = None
        kept: str | None = None
        failed_at: int | None = None
        ran: list[Run] = []
        for n, target in enumerate(targets):
            origin = _step_origin(chain_id, n)
            execution = ExecutionContext(
                RunTrigger.WORKFLOW_STEP,
                ctx,
                workflow_id=workflow_id,
                workflow_run_id=chain_id,
                step_index=n,
                previous_step_output=previous,
                variables=shared,
            )
            run = await self._step(ctx, target, given[n], previous, origin, execution, deadline - loop.time())
            ran.append(run)
            if run.outcome != RunOutcome.SUCCEEDED:
                failed_at = n
                break
            # The output as the plugin answered it: its record keeps it cut to 16 KB and redacted.
            previous, kept = run.value, run.output
        if failed_at is not None:
            reason = f"Not run: step {failed_at + 1} of the chain did not succeed"
            rest = [
                _not_run(InstallRoute.of(target.install, ctx.plan), _step_origin(chain_id, n), reason)
                for n, target in enumerate(targets)
                if n > failed_at
            ]
            if rest:
                await self.runs.record(rest)
            ran += rest
        # by the steps' own ids (primary keys): workflow_run_id has no index, and needs none elsewhere
        records = await RunRecord.filter(id__in=[run.id for run in ran]).order_by("step_index")
        status = RunOutcome.SUCCEEDED if failed_at is None else RunOutcome.FAILED
        metadata = {
            "workflowRunId": chain_id,
            "slugs": [target.install.plugin.slug for target in targets],
            "status": status.value,
        }
        await audit.record(ctx, "plugin.chain_run", "chain", chain_id, metadata)
        output = json.loads(kept) if failed_at is None and kept is not None else None
        return ChainResult(chain_id, status, records, output)

    async def _step(
        self,
        ctx: ServiceContext,
        target: _Target,
        given: dict[str, Any] | None,
        previous: Any,
        origin: Origin,
        execution: ExecutionContext,
        time_left: float,
    ) -> Run:
        """One step: its input checked (the output before it, when it was given none), then run."""
        route = InstallRoute.of(target.install, ctx.plan)
        if time_left <= 0:
            return await self._recorded(_failed(route, origin, "Not run: the chain ran out of time"))
        if given is None:
            try:
                given = validate_config(target.input_schema, previous, subject=INPUT)
            except BadUserInput as exc:
                reason = f"The previous step's output is not valid input for this step: {exc.message}"
                return await self._recorded(_failed(route, origin, reason))
        return await self._run(ctx, target, given, origin, execution, new_id(), time_left)

    async def _run(
        self,
        ctx: ServiceContext,
        target: _Target,
        input: dict[str, Any],
        origin: Origin,
        execution: ExecutionContext,
        run_id: str,
        time_left: float | None = None,
    ) -> Run:
        route = InstallRoute.of(target.install, ctx.plan)
        if route.open_at(timezone.now()):  # its circuit breaker is open: not run, like any other run
            run = skipped_run(route, origin)
        else:
            run = await self.executor.run_step(route, target.handler, input, origin, execution, time_left)
        run.id = run_id
        return await self._recorded(run)

    async def _recorded(self, run: Run) -> Run:
        await self.runs.record([run])
        return run

    async def _targets(self, ctx: ServiceContext, plugin_ids: list[str], where: str) -> list[_Target]:
        """The caller's installs of these plugins, each able to run on demand now; else the error
        of the first that is not (`where`: its path, with `{n}` for its place)."""
        rows = await UserPlugin.filter(user_id=ctx.user_id, plugin_id__in=set(plugin_ids)).select_related("plugin")
        installs = {row.plugin_id: row for row in rows}
        targets = []
        for n, plugin_id in enumerate(plugin_ids):
            path = where.format(n=n)
            install = installs.get(plugin_id)
            if install is None:
                step = "" if len(plugin_ids) == 1 else f" (step {n + 1})"
                if not await Plugin.exists(id=plugin_id):
                    raise NotFound(f"No such plugin{step}")
                raise NotInstalled(f"The plugin is not installed{step}")
            targets.append(self._runnable(install, path))
        return targets

    def _runnable(self, install: UserPlugin, path: str) -> _Target:
        plugin = install.plugin
        handler = self.executor.registry.get(plugin.slug)
        name = plugin.name
        if handler is None or not plugin.is_active:
            raise BadUserInput(f"{name} is no longer available", [FieldError(path, "is no longer available")])
        schema = handler.definition.input_schema
        if schema is None:
            message = "takes no input: it runs only on its events"
            raise BadUserInput(f"{name} cannot be run on demand: it has no inputSchema", [FieldError(path, message)])
        if install.status == InstallStatus.DISABLED:
            raise BadUserInput(f"{name} is disabled: enable it to run it", [FieldError(path, "is disabled")])
        if install.status not in (InstallStatus.ACTIVE, InstallStatus.FAILING):
            reason = install.status_reason or "it does not run"
            problem = _NOT_RUNNING[install.status]
            raise BadUserInput(f"{name} {problem}: {reason}", [FieldError(path, problem)])
        return _Target(install, handler, schema)

    async def _take_turns(self, ctx: ServiceContext, runs: int) -> None:
        """Counts `runs` runs against the caller's RUNS_PER_MINUTE, all or none; RateLimited when
        they do not fit."""
        per_minute = self.settings.runs_per_minute
        limit = f"Runs on demand are limited to {per_minute} a minute (a chain counts each of its steps)"
        if runs > per_minute:
            raise RateLimited(f"{limit}: {runs} runs at once can never fit")
        key = f"runs:{ctx.user_id}"
        slot = Slot(key, Rate(self.window_seconds / per_minute, burst=per_minute))
        taken: list[Reservation] = []
        for _ in range(runs):
            reservation = await self.limits.reserve(key, [slot], budget=0.0)
            if not reservation.granted:
                for earlier in reversed(taken):
                    await self.limits.give_back(earlier)
                # when all of them fit: the refused one's wait, less the turns given back, plus those still to come
                wait = reservation.wait + (runs - 1 - len(taken)) * slot.rate.interval
                raise RateLimited(f"{limit}; try again in {max(1, math.ceil(wait))} s")
            taken.append(reservation)


def _checked_input(target: _Target, input: Any, path: str) -> dict[str, Any]:
    try:
        return validate_config(target.input_schema, input, subject=INPUT)
    except BadUserInput as exc:
        errors = [FieldError(path + error.path, error.message, error.keyword, error.params) for error in exc.errors]
        raise BadUserInput(f"{path}: {exc.message}", errors) from None


def _checked_variables(variables: Any) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise BadUserInput("variables must be an object", [FieldError("/variables", "must be an object")])
    try:
        text = checked_json(variables, subject=INPUT)
    except BadUserInput as exc:
        errors = [FieldError("/variables" + error.path, error.message) for error in exc.errors]
        raise BadUserInput(f"variables: {exc.message}", errors) from None
    if len(text.encode("utf-8")) > MAX_VARIABLES_BYTES:
        message = f"is larger than {MAX_VARIABLES_BYTES} bytes as JSON"
        raise BadUserInput(f"variables {message}", [FieldError("/variables", message)])
    return json.loads(text)


def _workflow_id(steps: list[ChainStep]) -> str:
    """What names the chain itself, not one run of it: the same steps with the same inputs have the
    same id, run after run (stored workflows, when they come, will have ids of their own)."""
    definition = json.dumps([[step.plugin_id, step.input] for step in steps], sort_keys=True, allow_nan=True)
    return "chain-" + hashlib.sha256(definition.encode("utf-8")).hexdigest()[:26]


def _step_origin(chain_id: str, n: int) -> Origin:
    return Origin(
        key=f"chain:{chain_id}:{n}",
        trigger=RunTrigger.WORKFLOW_STEP,
        event_type="",
        replay=False,
        workflow_run_id=chain_id,
        step_index=n,
    )


def _failed(route: InstallRoute, origin: Origin, error: str) -> Run:
    return Run(route, origin, RunOutcome.FAILED, error=error, created_at=timezone.now())


def _not_run(route: InstallRoute, origin: Origin, error: str) -> Run:
    return Run(route, origin, RunOutcome.SKIPPED, error=error, created_at=timezone.now())
