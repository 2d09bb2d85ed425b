"""Runs one install's handler for one event, in a context that reaches only that install."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app import live
from app.accounts.context import ServiceContext
from app.errors import PluginFailed
from app.gateways import service as gateways
from app.gateways.inbox import InboxWriter
from app.gateways.models import GatewayType
from app.gateways.telegram import TelegramApi
from app.plugins.contract import ExecutionContext, ExecutionMetrics, ExecutionResult, PluginEvent, PluginHandler
from app.plugins.models import PluginExecution, UserPlugin
from app.plugins.registry import PluginRegistry
from app.plugins.storage import InstallStorage

log = logging.getLogger("app.plugins")

ERROR_LIMIT = 2_000


@dataclass(frozen=True)
class EventKey:
    """Names one event for the runs it causes. `replay` says it may have run before (a retry,
    a reclaimed lease), so runs first look for their record; a first delivery skips that query."""

    value: str
    replay: bool = True


class GatewayAccess:
    """A plugin's way to its user's gateways, and to nobody else's."""

    def __init__(self, user_id: str, api: TelegramApi, inbox: InboxWriter, metrics: ExecutionMetrics) -> None:
        self._user_id = user_id
        self._api = api
        self._inbox = inbox
        self._metrics = metrics

    async def get(self, type: GatewayType) -> gateways.GatewayRef | None:
        for gateway in await gateways.active_gateways(self._user_id):
            if gateway.type == type:
                return gateways.GatewayRef.of(gateway)
        return None

    async def execute(self, gateway_id: str, action: str, params: dict[str, Any]) -> Any:
        self._metrics.api_calls += 1
        return await gateways.execute(self._user_id, gateway_id, action, params, self._api, self._inbox)


@dataclass
class RunContext:
    user_id: str
    install_id: str
    config: dict[str, Any]
    execution: ExecutionContext
    gateways: GatewayAccess
    storage: InstallStorage
    log: logging.LoggerAdapter  # type: ignore[type-arg]
    writes: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    topics: set[str] = field(default_factory=set)

    def write(self, operation: Callable[[], Awaitable[None]]) -> None:
        self.writes.append(operation)

    def notify(self, topic: str = "updated") -> None:
        self.topics.add(topic)

    async def commit_writes(self) -> None:
        """The run's buffered writes (call inside the run's transaction)."""
        await self.storage.flush()
        for operation in self.writes:
            await operation()
        self.writes.clear()


class PluginLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Every line a plugin logs names the plugin and the user it runs for."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        return f"[{self.extra['plugin']} user={self.extra['user_id']}] {msg}", {**kwargs, "extra": self.extra}


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_LIMIT]


class Executor:
    def __init__(
        self,
        registry: PluginRegistry,
        api: TelegramApi,
        inbox: InboxWriter,
        timeout_seconds: float,
        notify: Callable[[str], None] = lambda channel: None,
    ) -> None:
        self.registry = registry
        self.api = api
        self.inbox = inbox
        self.timeout_seconds = timeout_seconds
        self.notify = notify  # a live-update channel, once a run has committed

    def context(
        self, install: UserPlugin, slug: str, execution: ExecutionContext, metrics: ExecutionMetrics
    ) -> RunContext:
        return RunContext(
            user_id=install.user_id,
            install_id=install.id,
            config=dict(install.config),
            execution=execution,
            gateways=GatewayAccess(install.user_id, self.api, self.inbox, metrics),
            storage=InstallStorage(install.id),
            log=PluginLogger(log, {"plugin": slug, "user_id": install.user_id}),
        )

    async def run(
        self,
        install: UserPlugin,
        handler: PluginHandler,
        event: PluginEvent,
        execution: ExecutionContext,
        event_key: EventKey,
    ) -> ExecutionResult:
        """Runs the handler once per (install, event), records the outcome on the install."""
        if event_key.replay and await PluginExecution.exists(install_id=install.id, event_key=event_key.value):
            return ExecutionResult(success=True, skipped=True)
        metrics = ExecutionMetrics()
        ctx = self.context(install, handler.slug, execution, metrics)
        started = time.perf_counter()
        output, error = await self._call(lambda: handler.on_event(event, ctx))
        metrics.duration_ms = (time.perf_counter() - started) * 1000
        result = ExecutionResult(success=error is None, output=output, error=error, metrics=metrics)
        if error is not None:
            ctx.log.warning("plugin run failed: %s", error)
        try:
            async with in_transaction():
                await PluginExecution.create(
                    install_id=install.id,
                    event_key=event_key.value,
                    success=result.success,
                    error=error,
                    duration_ms=metrics.duration_ms,
                )
                if result.success:
                    await ctx.commit_writes()
                await UserPlugin.filter(id=install.id).update(
                    execution_count=F("execution_count") + 1,
                    last_executed_at=datetime.now(timezone.utc),
                    last_error=error,
                )
        except IntegrityError:  # another process ran this event for this install meanwhile
            return ExecutionResult(success=True, skipped=True)
        if result.success:
            self._announce(ctx, handler.slug)
        return result

    def _announce(self, ctx: RunContext, slug: str) -> None:
        for topic in ctx.topics:
            self.notify(live.channel(ctx.user_id, slug, topic))

    async def run_hook(self, install: UserPlugin, hook: str, service: ServiceContext) -> None:
        """Runs a lifecycle hook (on_install, …) of the install's plugin, if it is still registered;
        raises PluginFailed when it fails."""
        handler = self.registry.get(install.plugin.slug)
        if handler is None:
            return
        metrics = ExecutionMetrics()
        ctx = self.context(install, handler.slug, ExecutionContext(trigger="standalone", service=service), metrics)
        _, error = await self._call(lambda: getattr(handler, hook)(ctx))
        if error is not None:
            ctx.log.warning("%s failed: %s", hook, error)
            raise PluginFailed(f"The plugin's {hook} hook failed: {error}")
        async with in_transaction():
            await ctx.commit_writes()
        self._announce(ctx, handler.slug)

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, str | None]:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(self.timeout_seconds):
                return await call(), None
        except TimeoutError:
            return None, f"Timed out after {self.timeout_seconds:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a plugin's failure is its own: record it, never spread it
            return None, _describe(exc)
