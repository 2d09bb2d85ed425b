"""Hands each event to the installs that should see it: the gateway owner's running installs
(ACTIVE, or FAILING with a trial run due) of an active plugin that handles the event, and whose
required gateway types the owner has active. An install whose circuit breaker is open gets a
SKIPPED run instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Iterable
from datetime import datetime
from typing import Any, cast

from app import inline
from app.clock import utcnow
from app.plugins.contract import ExecutionMetrics, PluginEvent, PluginHandler
from app.plugins.events import schedule_event
from app.plugins.executor import Executor
from app.plugins.models import RunOutcome, RunRecord
from app.plugins.registry import PluginRegistry
from app.plugins.routing import InstallRoute, RoutingCache, load_installs
from app.plugins.run_context import used_storage
from app.plugins.runs import Origin, Run
from app.plugins.storage import InstallStorage

Storages = dict[str, InstallStorage]  # install id -> the storage of its last run in this commit
SKIPPED_ERROR = "Not run: the plugin is paused after failing repeatedly (its circuit breaker is open)"


class EventRouter:
    def __init__(self, registry: PluginRegistry, executor: Executor, routes: RoutingCache) -> None:
        self.registry = registry
        self.executor = executor
        self.routes = routes

    async def gateway_event(
        self, gateway_id: str, event: PluginEvent, origin: Origin, storages: Storages | None = None
    ) -> list[Run]:
        """The runs of the gateway owner's installs for one event (not yet recorded). `storages`:
        each install's storage after the earlier events of the same commit, updated here."""
        routes = await self.routes.for_gateway(gateway_id)
        if routes is None:
            return []
        targets = []
        for install in routes.installs:
            handler = self.registry.get(install.slug)
            if handler is None or not handler.handles(event.type):
                continue
            if not set(handler.definition.required_gateways) <= routes.gateway_types:
                continue
            targets.append((install, handler))
        return await self._run(targets, event, origin, storages)

    async def schedule(
        self, slug: str, schedule: str, fired_at: datetime, origin: Origin, only: Collection[str] | None = None
    ) -> list[Run]:
        """The runs of one plugin's schedule for every user with a running install of it (of the
        installs `only` names, when given)."""
        handler = self.registry.get(slug)
        if handler is None or (only is not None and not only):
            return []
        filters: dict[str, Any] = {} if only is None else {"id__in": list(only)}
        installs = await load_installs(plugin__slug=slug, **filters)
        return await self._run([(install, handler) for install in installs], schedule_event(schedule, fired_at), origin)

    async def _run(
        self,
        targets: list[tuple[InstallRoute, PluginHandler]],
        event: PluginEvent,
        origin: Origin,
        storages: Storages | None = None,
    ) -> list[Run]:
        if origin.replay and targets:
            ran = await _recorded([install.id for install, _ in targets], origin.key)
            targets = [(install, handler) for install, handler in targets if install.id not in ran]
        now = utcnow()
        skipped = [install for install, _ in targets if install.open_at(now)]
        running = [(install, handler) for install, handler in targets if not install.open_at(now)]
        done = [skipped_run(install, origin) for install in skipped]
        if running:
            done += await self._run_together(running, event, origin, storages)
        if storages is not None:
            for run in done:
                if run.outcome == RunOutcome.SUCCEEDED and run.ctx is not None:
                    storage = used_storage(run.ctx)
                    if storage is not None:
                        storages[run.install.id] = storage
        return done

    async def _run_together(
        self,
        targets: list[tuple[InstallRoute, PluginHandler]],
        event: PluginEvent,
        origin: Origin,
        storages: Storages | None,
    ) -> list[Run]:
        """Installs' runs, each bounded by one timeout from now: one that is not done by then is
        cut and recorded as timed out; the others keep their outcomes. They run in this task, one
        after another, while none suspends (app/inline.py); one that does goes on here, and
        the installs after it in a task of their own, and so on. A run that never suspends costs
        no task and no timer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.executor.timeout_seconds
        metrics = [ExecutionMetrics() for _ in targets]  # what a run cut by the timeout had counted

        def run(index: int) -> Coroutine[Any, Any, Run]:
            install, handler = targets[index]
            before = storages.get(install.id) if storages is not None else None
            return self.executor.run(
                install, handler, event, origin, before, timed=False, metrics=metrics[index], deadline=deadline
            )

        together = Together(run, len(targets))
        try:
            await together.run_from(0, deadline)
            while pending := [task for task in together.tasks if not task.done()]:
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait(pending, timeout=left)
            finished = list(together.runs)  # what ends after this point was cut
        finally:
            for task in together.tasks:
                task.cancel()  # a no-op for those done; ends the rest, also when the caller is cancelled
        if pending := [task for task in together.tasks if not task.done()]:
            await asyncio.wait(pending)
        for task in together.tasks:
            if not task.cancelled():
                task.result()  # our own failure, if any, is raised here: the event is retried
        return [
            self.executor.timed_out(install, origin, handler.slug, counted) if done is None else done
            for (install, handler), counted, done in zip(targets, metrics, finished, strict=True)
        ]


class Together:
    """Runs `run(0)` … `run(count - 1)` one after another in the caller's task while none
    suspends. The first that suspends goes on in that task to its end, and the runs after it in a
    new task, the same way; each run stays in the task it started in. `runs[i]` is run i's, once
    it is done."""

    def __init__(self, run: Callable[[int], Coroutine[Any, Any, Run]], count: int) -> None:
        self._run = run
        self.runs: list[Run | None] = [None] * count
        self.tasks: list[asyncio.Task[None]] = []

    async def run_from(self, first: int, deadline: float | None) -> None:
        """`deadline`: when this task cuts a run that suspended in it (the caller's task; a task
        of ours is cut by the caller, with a cancellation)."""
        for index in range(first, len(self.runs)):
            started = inline.start(self._run(index))
            if started.done:
                self.runs[index] = started.result
                continue
            if index + 1 < len(self.runs):
                task = asyncio.ensure_future(self.run_from(index + 1, None))
                task.add_done_callback(_retrieve)  # a failure raised elsewhere first is not logged as lost
                self.tasks.append(task)
            if deadline is None:
                self.runs[index] = await started.rest()
                return
            timeout = asyncio.timeout_at(deadline)
            try:
                async with timeout:
                    run = await started.rest()
            except TimeoutError:
                if not timeout.expired():
                    raise  # not ours: our own failure
                return
            if not timeout.expired():  # a run that ignored its cancellation was still cut
                self.runs[index] = run
            return


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


async def _recorded(install_ids: Iterable[str], key: str) -> set[str]:
    rows = await RunRecord.filter(install_id__in=list(install_ids), event_key=key).values_list("install_id", flat=True)
    return set(cast("list[str]", rows))  # tortoise types a flat values_list as tuples


def skipped_run(install: InstallRoute, origin: Origin) -> Run:
    """The run of an install whose circuit breaker is open: not run, and recorded so."""
    return Run(install, origin, RunOutcome.SKIPPED, error=SKIPPED_ERROR, created_at=utcnow())
