"""Hands each event to the installs that should see it: the gateway owner's running installs
(ACTIVE, or FAILING with a trial run due) of an active plugin that handles the event, and whose
required gateway types the owner has active. An install whose circuit breaker is open gets a
SKIPPED run instead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import cast

from tortoise import timezone

from app.plugins.contract import ExecutionMetrics, PluginEvent, PluginHandler
from app.plugins.events import schedule_event
from app.plugins.executor import Executor
from app.plugins.models import RunOutcome, RunRecord
from app.plugins.registry import PluginRegistry
from app.plugins.routing import InstallRoute, RoutingCache, load_installs
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

    async def schedule(self, slug: str, schedule: str, fired_at: datetime, origin: Origin) -> list[Run]:
        """The runs of one plugin's schedule for every user with a running install of it."""
        handler = self.registry.get(slug)
        if handler is None:
            return []
        installs = await load_installs(plugin__slug=slug)
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
        now = timezone.now()
        skipped = [install for install, _ in targets if install.open_at(now)]
        running = [(install, handler) for install, handler in targets if not install.open_at(now)]
        done = [skipped_run(install, origin) for install in skipped]
        if len(running) == 1:
            install, handler = running[0]
            before = storages.get(install.id) if storages is not None else None
            done.append(await self.executor.run(install, handler, event, origin, before))
        elif running:
            done += await self._run_together(running, event, origin, storages)
        if storages is not None:
            for run in done:
                if run.outcome == RunOutcome.SUCCEEDED and run.ctx is not None:
                    storages[run.install.id] = run.ctx.storage  # type: ignore[assignment]
        return done

    async def _run_together(
        self,
        targets: list[tuple[InstallRoute, PluginHandler]],
        event: PluginEvent,
        origin: Origin,
        storages: Storages | None,
    ) -> list[Run]:
        """Several installs' runs at once, under one timeout: one that is not done by then is
        cut and recorded as timed out; the others keep their outcomes."""
        metrics = [ExecutionMetrics() for _ in targets]  # what a run cut by the timeout had counted
        tasks = [
            asyncio.ensure_future(
                self.executor.run(
                    install,
                    handler,
                    event,
                    origin,
                    storages.get(install.id) if storages is not None else None,
                    timed=False,
                    metrics=counted,
                )
            )
            for (install, handler), counted in zip(targets, metrics, strict=True)
        ]
        try:
            _, pending = await asyncio.wait(tasks, timeout=self.executor.timeout_seconds)
        finally:
            for task in tasks:
                task.cancel()  # a no-op for those done; ends the rest, also when the caller is cancelled
        if pending:
            await asyncio.wait(pending)
        runs = []
        for (install, handler), task, counted in zip(targets, tasks, metrics, strict=True):
            if task in pending:
                runs.append(self.executor.timed_out(install, origin, handler.slug, counted))
            else:
                runs.append(task.result())  # our own failure, if any, is raised here: the event is retried
        return runs


async def _recorded(install_ids: Iterable[str], key: str) -> set[str]:
    rows = await RunRecord.filter(install_id__in=list(install_ids), event_key=key).values_list("install_id", flat=True)
    return set(cast("list[str]", rows))  # tortoise types a flat values_list as tuples


def skipped_run(install: InstallRoute, origin: Origin) -> Run:
    """The run of an install whose circuit breaker is open: not run, and recorded so."""
    return Run(install, origin, RunOutcome.SKIPPED, error=SKIPPED_ERROR, created_at=timezone.now())
