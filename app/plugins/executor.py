"""Runs a plugin's hooks with its context, isolated: a plugin's failure or timeout is its own run's
outcome, never anyone else's. Recording the run is app/plugins/runs.py's job."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import timezone
from tortoise.transactions import in_transaction

from app import live
from app.accounts.context import ServiceContext
from app.db_errors import is_database_unavailable
from app.errors import PluginFailed
from app.gateways.inbox_writer import InboxUnavailable
from app.gateways.models import GatewayType
from app.gateways.service import GatewayService
from app.outbound import OutboundHttp
from app.plugins.contract import (
    ExecutionContext,
    GatewayInfo,
    PluginContext,
    PluginEvent,
    PluginHandler,
    Trigger,
)
from app.plugins.models import RunOutcome, UserPlugin
from app.plugins.registry import PluginRegistry
from app.plugins.routing import InstallRoute
from app.plugins.runs import Origin, Run, apply_writes, describe_error
from app.plugins.sealed_config import open_config
from app.plugins.storage import InstallStorage
from app.secrets_at_rest import SecretUnreadable

log = logging.getLogger("app.plugins")


class GatewayAccess:
    """A plugin's way to its user's gateways, and to nobody else's."""

    def __init__(self, user_id: str, gateways: GatewayService, deadline: float | None) -> None:
        self._user_id = user_id
        self._gateways = gateways
        self._deadline = deadline  # the run's end (loop clock): a send whose turn comes later fails at once
        self.calls = 0

    async def get(self, type: GatewayType) -> GatewayInfo | None:
        for gateway in await self._gateways.active_gateways(self._user_id):
            if gateway.type == type:
                return GatewayInfo(gateway.id, gateway.type, gateway.name, gateway.bot_username)
        return None

    async def execute(self, gateway_id: str, action: str, params: dict[str, Any]) -> Any:
        self.calls += 1
        return await self._gateways.execute(self._user_id, gateway_id, action, params, deadline=self._deadline)


class PluginLogger(logging.LoggerAdapter[logging.Logger]):
    """Every line a plugin logs names the plugin and the user it runs for."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        return f"[{self.extra['plugin']} user={self.extra['user_id']}] {msg}", {**kwargs, "extra": self.extra}


class Executor:
    def __init__(
        self,
        registry: PluginRegistry,
        gateways: GatewayService,
        timeout_seconds: float,
        notify: Callable[[str], None] = lambda channel: None,
        http: OutboundHttp | None = None,
    ) -> None:
        self.http = http or OutboundHttp()
        self.registry = registry
        self.gateways = gateways
        self.timeout_seconds = timeout_seconds
        self.notify = notify  # a live-update channel, once a run has committed

    def context(
        self,
        user_id: str,
        install_id: str,
        config: dict[str, Any],
        slug: str,
        execution: ExecutionContext,
        storage_before: InstallStorage | None = None,
    ) -> PluginContext:
        return PluginContext(
            user_id=user_id,
            install_id=install_id,
            config=dict(open_config(install_id, config)),  # raises SecretUnreadable
            execution=execution,
            gateways=GatewayAccess(user_id, self.gateways, asyncio.get_running_loop().time() + self.timeout_seconds),
            storage=InstallStorage(install_id, storage_before),
            log=PluginLogger(log, {"plugin": slug, "user_id": user_id}),
            http=self.http,
        )

    def announce(self, user_id: str, slug: str, topic: str) -> None:
        self.notify(live.channel(user_id, slug, topic))

    async def run(
        self,
        install: InstallRoute,
        handler: PluginHandler,
        event: PluginEvent,
        origin: Origin,
        storage_before: InstallStorage | None = None,
        timed: bool = True,
    ) -> Run:
        """Runs the handler on one event; the run, with its writes buffered, is for the caller to
        record. `storage_before`: the storage of this install's run just before, in the same commit.
        `timed=False`: the caller bounds it (one timeout for several runs costs less than one each)."""
        service = ServiceContext(user_id=install.user_id, plan=install.plan)
        execution = ExecutionContext(origin.trigger, service)
        try:
            ctx = self.context(install.user_id, install.id, install.config, handler.slug, execution, storage_before)
        except SecretUnreadable as exc:
            log.error("install %s not run: %s", install.id, exc)
            return Run(
                install,
                origin,
                RunOutcome.FAILED,
                0.0,
                f"A secret setting cannot be decrypted: {exc}",
                created_at=timezone.now(),
            )
        started = time.perf_counter()
        output, error = await self._call(lambda: handler.on_event(event, ctx), timed)
        duration_ms = (time.perf_counter() - started) * 1000
        finished = timezone.now()
        if error is not None:
            ctx.log.warning("plugin run failed: %s", error)
            return Run(install, origin, RunOutcome.FAILED, duration_ms, error, created_at=finished)
        return Run(install, origin, RunOutcome.SUCCEEDED, duration_ms, output=output, ctx=ctx, created_at=finished)

    async def run_hook(self, install: UserPlugin, hook: str, service: ServiceContext) -> None:
        """Runs a lifecycle hook (on_install, …) of the install's plugin, if it is still registered;
        raises PluginFailed when it fails."""
        handler = self.registry.get(install.plugin.slug)
        if handler is None:
            return
        try:
            ctx = self.context(
                install.user_id, install.id, install.config, handler.slug, ExecutionContext(Trigger.STANDALONE, service)
            )
        except SecretUnreadable as exc:
            raise PluginFailed(f"A secret setting cannot be decrypted: {exc}") from None
        _, error = await self._call(lambda: getattr(handler, hook)(ctx))
        if error is not None:
            ctx.log.warning("%s failed: %s", hook, error)
            raise PluginFailed(f"The plugin's {hook} hook failed: {error}")
        async with in_transaction():
            await apply_writes([ctx])
        for topic in ctx.topics:
            self.announce(install.user_id, handler.slug, topic)

    def timed_out(self, install: InstallRoute, origin: Origin, slug: str) -> Run:
        """The run of a plugin that did not finish within the timeout (`run(timed=False)` cut)."""
        error = f"Timed out after {self.timeout_seconds:g} s"
        PluginLogger(log, {"plugin": slug, "user_id": install.user_id}).warning("plugin run failed: %s", error)
        return Run(install, origin, RunOutcome.FAILED, self.timeout_seconds * 1000, error, created_at=timezone.now())

    async def _call(self, call: Callable[[], Awaitable[Any]], timed: bool = True) -> tuple[Any, str | None]:
        try:
            if not timed:
                return await call(), None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(self.timeout_seconds):
                return await call(), None
        except TimeoutError:
            return None, f"Timed out after {self.timeout_seconds:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, InboxUnavailable) or is_database_unavailable(exc):
                raise  # our database failed the plugin, not the plugin: the event runs again once it is back

            return None, describe_error(exc)  # a plugin's failure is its own: record it, never spread it
