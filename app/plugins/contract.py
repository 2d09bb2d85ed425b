"""What a plugin is: its definition, the events it gets, its context and its result.

A plugin is one module with a `PluginHandler` subclass, plus one line in
`app/plugins/handlers/__init__.py` that registers it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from app.accounts.context import ServiceContext
from app.clock import utcnow
from app.event_types import EventType
from app.gateways.models import GatewayType
from app.outbound import OutboundHttp, OutboundResponse
from app.plugins.models import RunTrigger
from app.telegram.light import LightCallback, LightMemberUpdate, LightMessage, Parsed

if TYPE_CHECKING:  # aiogram's types cost 165 MiB at import: loaded where events are parsed
    from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

# --- definition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A recurring `schedule.trigger`: fires once every `every_seconds`, across all processes.

    `pending`, when given, says which installs the tick has work for (their ids, given the tick's
    instant): only those run. A schedule that fires often then costs one query a tick, not a run
    per install."""

    name: str
    every_seconds: int
    pending: Callable[[datetime], Awaitable[Collection[str]]] | None = None


@dataclass(frozen=True)
class PluginDefinition:
    slug: str
    name: str
    description: str
    version: str = "1.0.0"
    required_gateways: tuple[GatewayType, ...] = ()
    config_schema: dict[str, Any] = field(default_factory=dict)
    category: str = "general"
    icon: str | None = None
    # What `run` takes and answers (JSON Schema); a plugin with an input schema can be run on demand
    # (`runPlugin`) and as a step of a chain (`runChain`). Both optional.
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


def chat_id_schema(description: str) -> dict[str, Any]:
    """The JSON Schema of a Telegram chat id in a plugin's input or config: an integer that JSON
    readers (JavaScript's included) keep exact, so within ±(2^53 − 1)."""
    return {
        "type": "integer",
        "title": "Chat id",
        "description": description,
        "minimum": -(2**53) + 1,
        "maximum": 2**53 - 1,
    }


# A request's config is what the caller sent, any JSON value: the service validates it
# (an object, not too deep, against the plugin's schema) before anything is stored.


@dataclass(frozen=True)
class InstallRequest:
    plugin_id: str
    config: Any = None


@dataclass(frozen=True)
class ConfigUpdateRequest:
    plugin_id: str
    config: Any


# --- events --------------------------------------------------------------------------------

# The event types are app.event_types.EventType (re-exported here for plugins).


# A Telegram event carries the stored value twice over: `light`, the fields that most plugins read
# (app/telegram/light.py), read before the event is routed; and aiogram's object (`message`,
# `callback_query`, `chat_member`), built when a plugin first asks for it. A plugin that reads only
# `light` never loads aiogram's types (165 MiB) nor pays for their parse. aiogram's object checks the
# whole value: when aiogram refuses a part that `light` does not read, asking for it raises pydantic's
# ValidationError, and the run fails with it.


@dataclass(frozen=True)
class TelegramMessageEvent:
    """A message or a channel post that reached a connected bot."""

    gateway_id: str
    update_id: int
    parsed: Parsed[LightMessage, Message]
    is_channel_post: bool = False
    type: ClassVar[EventType] = EventType.TELEGRAM_MESSAGE

    @property
    def light(self) -> LightMessage:
        return self.parsed.light

    @property
    def message(self) -> Message:
        return self.parsed.model()


@dataclass(frozen=True)
class TelegramCallbackEvent:
    gateway_id: str
    update_id: int
    parsed: Parsed[LightCallback, CallbackQuery]
    type: ClassVar[EventType] = EventType.TELEGRAM_CALLBACK

    @property
    def light(self) -> LightCallback:
        return self.parsed.light

    @property
    def callback_query(self) -> CallbackQuery:
        return self.parsed.model()


@dataclass(frozen=True)
class ChatMemberEvent:
    """A member's status changed in a chat where the bot is an administrator (`chat_member`)."""

    gateway_id: str
    update_id: int
    parsed: Parsed[LightMemberUpdate, ChatMemberUpdated]
    type: ClassVar[EventType] = EventType.TELEGRAM_CHAT_MEMBER

    @property
    def light(self) -> LightMemberUpdate:
        return self.parsed.light

    @property
    def chat_member(self) -> ChatMemberUpdated:
        return self.parsed.model()


@dataclass(frozen=True)
class MyChatMemberEvent:
    """The bot's own status changed in a chat (`my_chat_member`): it was added, promoted, demoted,
    or removed. Telegram sends it without being asked for it by name only when no types are named."""

    gateway_id: str
    update_id: int
    parsed: Parsed[LightMemberUpdate, ChatMemberUpdated]
    type: ClassVar[EventType] = EventType.TELEGRAM_MY_CHAT_MEMBER

    @property
    def light(self) -> LightMemberUpdate:
        return self.parsed.light

    @property
    def my_chat_member(self) -> ChatMemberUpdated:
        return self.parsed.model()


@dataclass(frozen=True)
class MessageSentEvent:
    """A message the bot sent through a gateway."""

    gateway_id: str
    parsed: Parsed[LightMessage, Message]
    type: ClassVar[EventType] = EventType.TELEGRAM_MESSAGE_SENT

    @property
    def light(self) -> LightMessage:
        return self.parsed.light

    @property
    def message(self) -> Message:
        return self.parsed.model()


@dataclass(frozen=True)
class ScheduleTriggerEvent:
    schedule: str
    fired_at: datetime
    type: ClassVar[EventType] = EventType.SCHEDULE_TRIGGER


PluginEvent = (
    TelegramMessageEvent
    | TelegramCallbackEvent
    | ChatMemberEvent
    | MyChatMemberEvent
    | MessageSentEvent
    | ScheduleTriggerEvent
)


# --- a run -----------------------------------------------------------------------------------


# Why a plugin runs is app.plugins.models.RunTrigger (re-exported here for plugins): event, schedule,
# retry, standalone (`runPlugin`, a lifecycle hook) or workflow_step (a step of `runChain`).


# A run's context, result and metrics keep the product spec's names (ExecutionContext, `ctx.execution`,
# ExecutionResult): plugins are written against them. Everywhere else in code it is a run.
@dataclass(frozen=True)
class ExecutionContext:
    trigger: RunTrigger
    service: ServiceContext
    # A step of a chain (trigger WORKFLOW_STEP): the chain (the same steps and inputs have the same
    # `workflow_id`, run after run), this run of it, the step's place in it (from 0), what the step
    # before answered, and the chain's variables.
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    step_index: int | None = None
    previous_step_output: Any = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ExecutionMetrics:
    """A run's figures. `api_calls` is counted for the plugin (every `ctx.gateways.execute` and
    `ctx.http` call, retries included); `tokens_used` is the plugin's to set, when it calls a model."""

    duration_ms: float = 0.0
    api_calls: int = 0
    tokens_used: int | None = None


@dataclass(slots=True)
class ExecutionResult:
    success: bool
    output: Any = None
    error: str | None = None
    metrics: ExecutionMetrics = field(default_factory=ExecutionMetrics)


# --- what a plugin sees ----------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayInfo:
    """What a plugin may know of a gateway: never its token or secret."""

    id: str
    type: GatewayType
    name: str
    bot_username: str | None


class GatewayAccessor(Protocol):
    async def get(self, type: GatewayType) -> GatewayInfo | None:
        """The user's active gateway of this type."""

    async def execute(self, gateway_id: str, action: str, params: dict[str, Any]) -> Any:
        """Calls a gateway action, e.g. `sendMessage`, on one of the user's own gateways, through
        the bot's rate-limited send queue."""


class HttpClient(Protocol):
    """`ctx.http`: HTTPS to other services, never into our own network (app/outbound.py)."""

    async def post(
        self, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse: ...

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse: ...


class PluginStorage(Protocol):
    """JSON key-value storage of one install. Writes land together when the run succeeds."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def get_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        """Several keys in one round trip."""

    async def set(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def increment(self, key: str, by: int = 1) -> None:
        """Adds to a number atomically when the run commits; `get` shows it within the run."""


T = TypeVar("T")


@dataclass(frozen=True)
class BatchedWrite(Generic[T]):
    """A write that many runs can share: runs committed together pass their `item`s to one call
    of `apply` (e.g. one multi-row upsert for a batch of events)."""

    apply: Callable[[list[T]], Awaitable[None]]
    item: T


Write = Callable[[], Awaitable[None]] | BatchedWrite[Any]


@dataclass
class PluginContext:
    """What a plugin's hooks get. Built by the executor for each run."""

    user_id: str
    install_id: str
    config: dict[str, Any]
    execution: ExecutionContext
    gateways: GatewayAccessor
    storage: PluginStorage
    log: logging.LoggerAdapter[logging.Logger]
    http: HttpClient = field(default_factory=OutboundHttp)
    # The run's figures: the executor counts its API calls; a plugin that calls a model sets
    # `metrics.tokens_used`.
    metrics: ExecutionMetrics = field(default_factory=ExecutionMetrics)
    now: Callable[[], datetime] = utcnow  # the platform's clock (tests fix it)
    writes: list[Write] = field(default_factory=list)
    topics: set[str] = field(default_factory=set)

    def write(self, operation: Write) -> None:
        """Runs `operation` in the run's transaction, only if the run succeeds and was not run
        before: for a plugin's own tables, with the same exactly-once guarantee as `storage`."""
        self.writes.append(operation)

    def notify(self, topic: str = "updated") -> None:
        """Tells the user's live subscribers of this plugin's `topic` once the run has committed."""
        self.topics.add(topic)

    def seconds_left(self) -> float | None:
        """The run's time left before its timeout (None: this context has no bound)."""
        return None


class PluginHandler:
    """Base class of every plugin. Override what you need; every hook is optional."""

    definition: ClassVar[PluginDefinition]
    events: ClassVar[frozenset[str]] = frozenset()
    schedules: ClassVar[tuple[Schedule, ...]] = ()
    # Whether `on_event` asks for aiogram's objects (`event.message` and the like) rather than
    # reading `event.light` only. A process loads aiogram's types at start-up when one of its
    # plugins may ask, and otherwise on the first ask, if any.
    typed_events: ClassVar[bool] = True

    @property
    def slug(self) -> str:
        return self.definition.slug

    def handles(self, event_type: str) -> bool:
        return event_type in self.events

    def migrate_config(self, from_version: str | None, config: dict[str, Any]) -> dict[str, Any]:
        """The config of an install made with plugin version `from_version` (None: before
        versions were kept), brought to `definition.version`. Raise ValueError with a reason when
        it cannot be; the install then waits for its user (NEEDS_CONFIG), unchanged."""
        return config

    async def on_install(self, ctx: PluginContext) -> None:
        return None

    async def on_uninstall(self, ctx: PluginContext) -> None:
        return None

    async def on_enable(self, ctx: PluginContext) -> None:
        return None

    async def on_disable(self, ctx: PluginContext) -> None:
        return None

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        return None

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        """Runs the plugin on demand (`runPlugin`) or as a step of a chain (`runChain`): `input`
        fits `definition.input_schema`, defaults filled in; the answer must fit `output_schema`.
        A plugin with an input schema implements it (the registry checks)."""
        raise NotImplementedError
