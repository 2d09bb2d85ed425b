"""Runs a plugin's hooks with its context, isolated: a plugin's failure or timeout is its own run's
outcome, never anyone else's. Recording the run is app/plugins/runs.py's job."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app import live
from app.accounts.context import ServiceContext
from app.clock import utcnow
from app.db_errors import is_database_unavailable
from app.errors import PluginFailed
from app.gateways.inbox_writer import InboxUnavailable
from app.gateways.service import GatewayService
from app.outbound import OutboundHttp
from app.plugins.config import output_problem
from app.plugins.contract import (
    ExecutionContext,
    ExecutionMetrics,
    ExecutionResult,
    PluginContext,
    PluginEvent,
    PluginHandler,
    RunTrigger,
)
from app.plugins.models import RunOutcome, UserPlugin
from app.plugins.registry import PluginRegistry
from app.plugins.routing import InstallRoute
from app.plugins.run_context import RunContext, plugin_logger
from app.plugins.runs import Origin, Run, apply_writes, describe_error
from app.plugins.sealed_config import open_config
from app.plugins.secrets import secret_keys
from app.plugins.storage import InstallStorage
from app.secrets_at_rest import SecretUnreadable

log = logging.getLogger("app.plugins")


class OutputInvalid(Exception):
    """A plugin answered what its output schema does not allow: its bug, shown in its run."""


class Executor:
    def __init__(
        self,
        registry: PluginRegistry,
        gateways: GatewayService,
        timeout_seconds: float,
        notify: Callable[[str], None] = lambda channel: None,
        http: OutboundHttp | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.http = http or OutboundHttp()
        self.registry = registry
        self.gateways = gateways
        self.timeout_seconds = timeout_seconds
        self.notify = notify  # a live-update channel, once a run has committed
        self.clock = clock
        self._secret_keys: dict[str, frozenset[str]] = {}

    def context(
        self,
        user_id: str,
        install_id: str,
        config: dict[str, Any],
        slug: str,
        execution: ExecutionContext,
        storage_before: InstallStorage | None = None,
        metrics: ExecutionMetrics | None = None,
    ) -> PluginContext:
        return RunContext(
            user_id,
            install_id,
            slug,
            dict(open_config(install_id, config)),  # raises SecretUnreadable
            gateway_service=self.gateways,
            http_client=self.http,
            deadline=asyncio.get_running_loop().time() + self.timeout_seconds,
            metrics=metrics or ExecutionMetrics(),
            now=self.clock,
            execution=execution,
            storage_before=storage_before,
        )

    def announce(self, user_id: str, slug: str, topic: str) -> None:
        self.notify(live.channel(user_id, slug, topic))

    def run(
        self,
        install: InstallRoute,
        handler: PluginHandler,
        event: PluginEvent,
        origin: Origin,
        storage_before: InstallStorage | None = None,
        timed: bool = True,
        metrics: ExecutionMetrics | None = None,
        deadline: float | None = None,
    ) -> Coroutine[Any, Any, Run]:
        """Runs the handler on one event; the run, with its writes buffered, is for the caller to
        record. `storage_before`: the storage of this install's run just before, in the same commit.
        `timed=False`: the caller bounds it (one timeout for several runs costs less than one each);
        `metrics`: where the run counts its calls, for a caller that cuts it to read; `deadline`:
        the run's end on the loop's clock, when the caller has it (an event's runs share one). (A
        plain function answering `_execute`'s coroutine: one frame less on the event path.)"""
        return self._execute(
            install,
            handler,
            origin,
            None,
            handler.on_event,
            event,
            storage_before=storage_before,
            timed=timed,
            metrics=metrics,
            deadline=deadline,
        )

    async def run_step(
        self,
        install: InstallRoute,
        handler: PluginHandler,
        input: dict[str, Any],
        origin: Origin,
        execution: ExecutionContext,
        time_left: float | None = None,
    ) -> Run:
        """Runs the handler's `run` on `input` (valid against its input schema), on demand or as a
        chain's step; an answer that does not fit the output schema fails the run, naming where.
        `time_left`: the caller's own bound, when shorter than the timeout (a chain's). The run,
        with its writes buffered, is for the caller to record."""
        schema = handler.definition.output_schema

        async def run(input: dict[str, Any], ctx: PluginContext) -> Any:
            output = await handler.run(input, ctx)
            problem = None if schema is None else output_problem(schema, output)
            if problem is not None:
                raise OutputInvalid(f"The plugin's output does not fit its outputSchema: {problem}")
            return output

        secrets = [
            input[key] for key in secret_keys(handler.definition.input_schema) if isinstance(input.get(key), str)
        ]
        timeout = self.timeout_seconds if time_left is None else min(self.timeout_seconds, time_left)
        return await self._execute(
            install, handler, origin, execution, run, input, input_secrets=secrets, timeout=timeout
        )

    async def _execute(
        self,
        install: InstallRoute,
        handler: PluginHandler,
        origin: Origin,
        execution: ExecutionContext | None,
        call: Callable[[Any, PluginContext], Awaitable[Any]],
        given: Any,
        *,
        storage_before: InstallStorage | None = None,
        timed: bool = True,
        metrics: ExecutionMetrics | None = None,
        input_secrets: list[str] | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Run:
        """`execution` None: an event's, made if the plugin asks for it."""
        try:
            config = dict(open_config(install.id, install.config))
        except SecretUnreadable as exc:
            log.error("install %s not run: %s", install.id, exc)
            reason = f"A secret setting cannot be decrypted: {exc}"
            return Run(install, origin, RunOutcome.FAILED, 0.0, reason, created_at=utcnow())
        ctx = RunContext(
            install.user_id,
            install.id,
            handler.slug,
            config,
            gateway_service=self.gateways,
            http_client=self.http,
            deadline=asyncio.get_running_loop().time() + self.timeout_seconds if deadline is None else deadline,
            metrics=metrics or ExecutionMetrics(),
            now=self.clock,
            execution=execution,
            trigger=origin.trigger,
            plan=install.plan,
            storage_before=storage_before,
        )
        started = time.perf_counter()
        output, error = await self._call(call, given, ctx, timed=timed, timeout=timeout)
        ctx.metrics.duration_ms = (time.perf_counter() - started) * 1000
        result = ExecutionResult(error is None, output, error, ctx.metrics)
        keys = self._secret_keys.get(handler.slug)
        if keys is None:
            keys = self._secret_keys[handler.slug] = secret_keys(handler.definition.config_schema)
        secrets = [ctx.config[key] for key in keys if isinstance(ctx.config.get(key), str)] if keys else []
        if input_secrets:
            secrets += input_secrets
        run = Run.of(install, origin, result, ctx, secrets, utcnow())
        if not result.success:
            ctx.log.warning("plugin run failed: %s", run.error)  # redacted, secret settings too
        return run

    async def run_hook(self, install: UserPlugin, hook: str, service: ServiceContext) -> None:
        """Runs a lifecycle hook (on_install, …) of the install's plugin, if it is still registered;
        raises PluginFailed when it fails."""
        handler = self.registry.get(install.plugin.slug)
        if handler is None:
            return
        try:
            ctx = self.context(
                install.user_id,
                install.id,
                install.config,
                handler.slug,
                ExecutionContext(RunTrigger.STANDALONE, service),
            )
        except SecretUnreadable as exc:
            raise PluginFailed(f"A secret setting cannot be decrypted: {exc}") from None
        _, error = await self._call(getattr(handler, hook), ctx)
        if error is not None:
            ctx.log.warning("%s failed: %s", hook, error)
            raise PluginFailed(f"The plugin's {hook} hook failed: {error}")
        async with in_transaction():
            await apply_writes([ctx])
        for topic in ctx.topics:
            self.announce(install.user_id, handler.slug, topic)

    def timed_out(self, install: InstallRoute, origin: Origin, slug: str, metrics: ExecutionMetrics) -> Run:
        """The run of a plugin that did not finish within the timeout (`run(timed=False)` cut);
        `metrics`: what it counted until then."""
        error = f"Timed out after {self.timeout_seconds:g} s"
        plugin_logger(slug, install.user_id).warning("plugin run failed: %s", error)
        metrics.duration_ms = self.timeout_seconds * 1000
        result = ExecutionResult(False, None, error, metrics)
        return Run.of(install, origin, result, None, (), utcnow())

    async def _call(
        self, call: Callable[..., Awaitable[Any]], *args: Any, timed: bool = True, timeout: float | None = None
    ) -> tuple[Any, str | None]:
        """`call(*args)`'s answer and None, or None and the error it failed with (its own: a plugin's)."""
        seconds = self.timeout_seconds if timeout is None else timeout
        try:
            if not timed:
                return await call(*args), None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(seconds):
                return await call(*args), None
        except TimeoutError:
            # A chain's step gets the time the chain has left (0.299968… s): said to the hundredth
            return None, f"Timed out after {round(seconds, 2):g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, InboxUnavailable) or is_database_unavailable(exc):
                raise  # our database failed the plugin, not the plugin: the event runs again once it is back

            return None, describe_error(exc)  # a plugin's failure is its own: record it, never spread it
