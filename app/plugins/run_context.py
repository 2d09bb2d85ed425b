"""A run's context, what a plugin's hooks get: its parts a plugin may not use (its gateways, its
logger, `ctx.http`, its storage, its execution context) are made when it first uses them. An event
that ten counters each count makes ten storages, and nothing else it would not use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from app.accounts.context import ServiceContext
from app.accounts.models import Plan
from app.gateways.models import GatewayType
from app.gateways.service import GatewayService
from app.outbound import OutboundHttp, OutboundResponse, Requests
from app.plugins.contract import (
    ExecutionContext,
    ExecutionMetrics,
    GatewayAccessor,
    GatewayInfo,
    HttpClient,
    PluginContext,
    PluginStorage,
    RunTrigger,
)
from app.plugins.storage import InstallStorage

log = logging.getLogger("app.plugins")
T = TypeVar("T")


class made_on_first_use(Generic[T]):  # noqa: N801 - a decorator, named as functools.cached_property is
    """An attribute made by the decorated method when first read, then kept in the instance (which
    an assignment replaces too). functools.cached_property does the same under a lock on 3.11."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._name = make.__name__

    @overload
    def __get__(self, instance: None, owner: type) -> made_on_first_use[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> T | made_on_first_use[T]:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._make(instance)
        return value


class GatewayAccess:
    """A plugin's way to its user's gateways, and to nobody else's. Each call to Telegram,
    retries included, counts in the run's `metrics.api_calls`."""

    def __init__(
        self, user_id: str, gateways: GatewayService, deadline: float | None, metrics: ExecutionMetrics
    ) -> None:
        self._user_id = user_id
        self._gateways = gateways
        self._deadline = deadline  # the run's end (loop clock): a send whose turn comes later fails at once
        self._metrics = metrics

    async def get(self, type: GatewayType) -> GatewayInfo | None:
        for gateway in await self._gateways.active_gateways(self._user_id):
            if gateway.type == type:
                return GatewayInfo(gateway.id, gateway.type, gateway.name, gateway.bot_username)
        return None

    async def execute(self, gateway_id: str, action: str, params: dict[str, Any]) -> Any:
        return await self._gateways.execute(
            self._user_id, gateway_id, action, params, deadline=self._deadline, attempted=self._count
        )

    def _count(self) -> None:
        self._metrics.api_calls += 1


class CountedHttp(Requests):
    """`ctx.http` of one run: the shared client, each request counted in the run's metrics."""

    def __init__(self, http: OutboundHttp, metrics: ExecutionMetrics) -> None:
        self._http = http
        self._metrics = metrics

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        self._metrics.api_calls += 1
        return await self._http.request(method, url, content=content, headers=headers)


class PluginLogger(logging.LoggerAdapter[logging.Logger]):
    """Every line a plugin logs names the plugin and the user it runs for."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        return f"[{self.extra['plugin']} user={self.extra['user_id']}] {msg}", {**kwargs, "extra": self.extra}


def plugin_logger(slug: str, user_id: str) -> PluginLogger:
    return PluginLogger(log, {"plugin": slug, "user_id": user_id})


class RunContext(PluginContext):
    """One run's PluginContext. `execution`: given, or made on first use from `trigger` and `plan`
    (an event's run); `deadline`: the run's end on the loop's clock, for its sends; `storage_before`:
    the storage of this install's run just before it in the same commit (InstallStorage)."""

    def __init__(
        self,
        user_id: str,
        install_id: str,
        slug: str,
        config: dict[str, Any],
        *,
        gateway_service: GatewayService,
        http_client: OutboundHttp,
        deadline: float,
        metrics: ExecutionMetrics,
        now: Callable[[], datetime],
        execution: ExecutionContext | None = None,
        trigger: RunTrigger = RunTrigger.EVENT,
        plan: Plan | None = None,
        storage_before: InstallStorage | None = None,
    ) -> None:
        # PluginContext's fields, set here rather than by its __init__: the lazy ones are properties.
        self.user_id = user_id
        self.install_id = install_id
        self.config = config
        self.metrics = metrics
        self.now = now
        self.writes = []
        self.topics = set()
        if execution is not None:
            self.__dict__["execution"] = execution
        self._slug = slug
        self._gateway_service = gateway_service
        self._http_client = http_client
        self._deadline = deadline
        self._trigger = trigger
        self._plan = plan
        self._storage_before = storage_before

    @made_on_first_use
    def execution(self) -> ExecutionContext:
        assert self._plan is not None, "a run context without its execution context needs the plan"
        return ExecutionContext(self._trigger, ServiceContext(user_id=self.user_id, plan=self._plan))

    @made_on_first_use
    def gateways(self) -> GatewayAccessor:
        return GatewayAccess(self.user_id, self._gateway_service, self._deadline, self.metrics)

    def seconds_left(self) -> float | None:
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    @made_on_first_use
    def storage(self) -> PluginStorage:
        return InstallStorage(self.install_id, self._storage_before)

    @made_on_first_use
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        return plugin_logger(self._slug, self.user_id)

    @made_on_first_use
    def http(self) -> HttpClient:
        return CountedHttp(self._http_client, self.metrics)


def used_storage(ctx: PluginContext) -> InstallStorage | None:
    """The run's storage if it has one of ours that the run used (a run that never touched its
    storage has nothing to write, and the next run of its install sees the one before)."""
    storage = ctx.__dict__.get("storage") if isinstance(ctx, RunContext) else ctx.storage
    return storage if isinstance(storage, InstallStorage) else None
