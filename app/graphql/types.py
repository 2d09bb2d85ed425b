from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Annotated, Generic, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from app import cursors
from app.accounts import models as accounts
from app.analytics.titles import chat_titles
from app.audit.models import AuditLog
from app.audit.service import cursor_of
from app.errors import ErrorCode
from app.event_types import EventType
from app.gateways import models as gateway_models
from app.gateways.service import webhook_url
from app.gateways.status import WORKING_STATUSES
from app.graphql.context import GraphQLContext
from app.graphql.execution import mark_shared
from app.plugins import models as plugin_models
from app.plugins import secrets
from app.plugins.reads import InstallRead, PluginRead

# strawberry.enum registers the model's own enum class; the aliases keep mypy seeing a class.
strawberry.enum(gateway_models.GatewayType, name="GatewayType")
strawberry.enum(accounts.Plan, name="Plan")
GatewayType = gateway_models.GatewayType
Plan = accounts.Plan

# The error codes (declared in app/errors.py), in the schema for clients to read: no field returns
# one, they come in each error's `extensions.code`.
_ERROR_CODES = cast(
    type[Enum],
    Enum(
        "ErrorCode", {code.name: strawberry.enum_value(code.value, description=code.description) for code in ErrorCode}
    ),
)
ERROR_CODE_TYPE = strawberry.enum(
    _ERROR_CODES,
    description="Every `extensions.code` an error of this API can carry. An error's `message` is for people; "
    "its code is for programs.",
)


@strawberry.type
class Plugin:
    id: strawberry.ID
    slug: str
    name: str
    description: str
    version: str
    required_gateways: list[GatewayType]
    config_schema: JSON
    input_schema: JSON | None = strawberry.field(
        description="What `runPlugin` and a chain's step take (JSON Schema); null: it runs only on its events."
    )
    output_schema: JSON | None = strawberry.field(description="What a run on demand answers (JSON Schema).")
    icon: str | None
    category: str
    is_builtin: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Whether the caller has installed this plugin (false when anonymous).")
    async def installed(self, info: strawberry.Info[GraphQLContext, None]) -> bool:
        return await info.context.installed.load(str(self.id))

    @classmethod
    def of(cls, row: plugin_models.Plugin | PluginRead) -> Plugin:
        if isinstance(row, PluginRead):
            return _plugin_of_read(row)
        return cls.made_of(row)

    @classmethod
    def made_of(cls, row: plugin_models.Plugin | PluginRead) -> Plugin:
        return cls(
            id=strawberry.ID(row.id),
            slug=row.slug,
            name=row.name,
            description=row.description,
            version=row.version,
            required_gateways=[gateway_models.GatewayType(g) for g in row.required_gateways],
            config_schema=JSON(row.config_schema),
            input_schema=None if row.input_schema is None else JSON(row.input_schema),
            output_schema=None if row.output_schema is None else JSON(row.output_schema),
            icon=row.icon,
            category=row.category,
            is_builtin=row.is_builtin,
            is_active=row.is_active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@lru_cache(maxsize=256)
def _plugin_of_read(row: PluginRead) -> Plugin:
    """A PluginRead is shared by the reads that found the same plugin row (app/plugins/reads.py)
    and equal only to itself: what is made of it is the same for all of them, and read-only, so its
    completion is kept too (app/graphql/execution.py)."""
    return mark_shared(Plugin.made_of(row))


strawberry.enum(
    plugin_models.InstallStatus,
    name="InstallStatus",
    description="ACTIVE runs; DISABLED by its user; WAITING_FOR_GATEWAY for a gateway it needs; "
    "NEEDS_CONFIG until its config fits the plugin's version; FAILING: paused by the circuit breaker.",
)
strawberry.enum(plugin_models.RunOutcome, name="RunOutcome")
strawberry.enum(
    plugin_models.RunTrigger,
    name="RunTrigger",
    description="Why a plugin ran: EVENT (a Telegram update or a message the bot sent), SCHEDULE, RETRY (retryRun), "
    "STANDALONE (runPlugin) or WORKFLOW_STEP (a step of runChain).",
)
InstallStatus = plugin_models.InstallStatus
RunOutcome = plugin_models.RunOutcome
RunTrigger = plugin_models.RunTrigger


@strawberry.type(
    description="One run of an installed plugin: for an event or a schedule, a retry, or on demand (runPlugin, "
    "a step of runChain)."
)
class PluginRun:
    id: strawberry.ID
    outcome: RunOutcome
    trigger: RunTrigger
    event_type: str = strawberry.field(
        description="e.g. telegram.message or schedule.trigger; empty for a run on demand (STANDALONE, WORKFLOW_STEP)."
    )
    event_label: str = strawberry.field(
        description="The event in words, e.g. Message or Schedule; for a run on demand, Run now or Chain step."
    )
    chat_id: strawberry.ID | None
    chat_title: str | None = strawberry.field(
        description="The chat's title as Channel Analytics last saw it; null for a chat it has not counted."
    )
    schedule: str | None
    fired_at: datetime | None
    error: str | None
    duration_ms: float
    created_at: datetime
    retry_of: strawberry.ID | None = strawberry.field(description="The run this one retried.")
    can_retry: bool = strawberry.field(
        description="Whether retryRun takes it: it failed or was skipped, and ran for an event or a schedule."
    )
    output: JSON | None = strawberry.field(
        description="What the run answered, as JSON: at most 16 KB (larger is cut, marked with "
        '"$truncated": true), with tokens and secret settings redacted. Null when it answered nothing.'
    )
    api_calls: int = strawberry.field(
        description="The calls the run made to Telegram and over HTTPS, retries included."
    )
    tokens_used: int | None = strawberry.field(
        description="The model tokens the plugin reported using; null when it reported none."
    )
    workflow_run_id: strawberry.ID | None = strawberry.field(
        description="The chain (ChainRun.id) this run was a step of; null otherwise."
    )
    step_index: int | None = strawberry.field(description="Its place in the chain, from 0; null outside a chain.")

    @classmethod
    def of(cls, row: plugin_models.RunRecord, titles: dict[int, str] | None = None) -> PluginRun:
        trigger = RunTrigger(row.trigger)
        return cls(
            id=strawberry.ID(row.id),
            outcome=row.outcome,
            trigger=trigger,
            event_type=row.event_type,
            event_label=EventType.label_of(row.event_type) if row.event_type else trigger.label,
            chat_id=None if row.chat_id is None else strawberry.ID(str(row.chat_id)),
            chat_title=None if row.chat_id is None else (titles or {}).get(row.chat_id),
            schedule=row.schedule,
            fired_at=row.fired_at,
            error=row.error,
            duration_ms=row.duration_ms,
            created_at=row.created_at,
            retry_of=None if row.retry_of is None else strawberry.ID(row.retry_of),
            can_retry=row.retryable,
            output=None if row.output is None else JSON(row.output),
            api_calls=row.api_calls,
            tokens_used=row.tokens_used,
            workflow_run_id=None if row.workflow_run_id is None else strawberry.ID(row.workflow_run_id),
            step_index=row.step_index,
        )


@strawberry.type(description="A chain's run (runChain): its steps in order, each also in its install's runs.")
class ChainRun:
    id: strawberry.ID = strawberry.field(description="Each step's workflowRunId.")
    status: RunOutcome = strawberry.field(description="SUCCEEDED when every step did; FAILED otherwise.")
    steps: list[PluginRun] = strawberry.field(
        description="One run per step, in order: those after the first failure were not run (SKIPPED)."
    )
    output: JSON | None = strawberry.field(description="The last step's output, when every step succeeded.")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="Pass it as `after` for the next page.")


Node = TypeVar("Node")


@strawberry.type
class Edge(Generic[Node]):
    """One item of a page, and the cursor that names its place (named e.g. PluginRunEdge)."""

    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    """A page of items, newest first (named e.g. PluginRunConnection)."""

    edges: list[Edge[Node]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Node]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, edges: list[Edge[Node]], more: bool) -> Connection[Node]:
        return cls(edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class UserPlugin:
    id: strawberry.ID
    plugin: Plugin
    config: JSON = strawberry.field(
        description='The settings. A secret setting (writeOnly in the schema) shows as {"$secret": "set"} '
        'or {"$secret": "unset"}, never its value.'
    )
    config_version: str | None = strawberry.field(description="The plugin version the config was last checked against.")
    is_enabled: bool = strawberry.field(description="Whether its user has it turned on; `status` says whether it runs.")
    status: InstallStatus
    status_reason: str | None = strawberry.field(description="Why it is in its status, in words.")
    run_count: int = strawberry.field(name="executionCount")
    consecutive_failures: int
    last_run_at: datetime | None = strawberry.field(name="lastExecutedAt")
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description="The install's runs, newest first. For the next page, pass `pageInfo.endCursor` as `after`."
    )
    async def runs(
        self,
        info: strawberry.Info[GraphQLContext, None],
        first: Annotated[int, strawberry.argument(description="1 to 100.")] = 20,
        after: str | None = None,
    ) -> Connection[PluginRun]:
        ctx = info.context.require_user()
        rows, more = await info.context.platform.run_history.runs_of(ctx, str(self.id), first, after)
        titles = await chat_titles(ctx.user_id, (row.chat_id for row in rows if row.chat_id is not None))
        edges = [Edge(cursor=cursors.encode(row.created_at, row.id), node=PluginRun.of(row, titles)) for row in rows]
        return Connection.of(edges, more)

    @classmethod
    def of(cls, row: plugin_models.UserPlugin | InstallRead) -> UserPlugin:
        if isinstance(row, InstallRead):
            return _install_of_read(row)
        return cls.made_of(row)

    @classmethod
    def made_of(cls, row: plugin_models.UserPlugin | InstallRead) -> UserPlugin:
        return cls(
            id=strawberry.ID(row.id),
            plugin=Plugin.of(row.plugin),
            config=secrets.shown_config(
                row.plugin.secret_keys
                if isinstance(row, InstallRead)
                else secrets.secret_keys(row.plugin.config_schema),
                row.config,
            ),
            config_version=row.config_version,
            is_enabled=row.is_enabled,
            status=row.status,
            status_reason=row.status_reason,
            run_count=row.run_count,
            consecutive_failures=row.consecutive_failures,
            last_run_at=row.last_run_at,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@lru_cache(maxsize=1024)
def _install_of_read(row: InstallRead) -> UserPlugin:
    """As _plugin_of_read: an InstallRead is shared by the reads that found the same row."""
    return mark_shared(UserPlugin.made_of(row))


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    action: str
    target_type: str
    target_id: str
    metadata: JSON
    created_at: datetime
    cursor: str = strawberry.field(description="Pass it as auditLog's `after` for the events older than this one.")

    @classmethod
    def of(cls, row: AuditLog) -> AuditEvent:
        return cls(
            id=strawberry.ID(row.id),
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            metadata=JSON(row.metadata),
            created_at=row.created_at,
            cursor=cursor_of(row),
        )


@strawberry.type(description="One of the caller's API tokens. The token itself is shown once, when it is created.")
class ApiToken:
    id: strawberry.ID
    name: str
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="Kept to the minute: updated at most once a minute.")
    expires_at: datetime | None = strawberry.field(description="Null: never expires.")
    is_current: bool = strawberry.field(description="Whether this request came with this token.")

    @classmethod
    def of(cls, row: accounts.ApiToken, current_id: str | None) -> ApiToken:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            is_current=row.id == current_id,
        )


@strawberry.type(description="A new API token: `token` is shown this once; only its hash is stored.")
class CreatedApiToken:
    token: str
    api_token: ApiToken


strawberry.enum(
    gateway_models.GatewayStatus,
    name="GatewayStatus",
    description="ACTIVE: Telegram accepts the token and delivers updates; TOKEN_REJECTED: Telegram refused the "
    "token (revoked in @BotFather, or the bot deleted): reconnect the bot with its new token; WEBHOOK_FAILING: "
    "Telegram reports it cannot deliver to the webhook; POLLING_CONFLICT: getUpdates was refused because a webhook "
    "or another poller uses the same token elsewhere; DISCONNECTED: disconnected, or replaced by a newer connect.",
)
strawberry.enum(
    gateway_models.Delivery,
    name="Delivery",
    description="How Telegram's updates reach the bot: WEBHOOK: Telegram posts them to PUBLIC_URL; "
    "POLLING: this deployment long-polls getUpdates.",
)
GatewayStatus = gateway_models.GatewayStatus
Delivery = gateway_models.Delivery


@strawberry.type(description="The bot's delivery as Telegram showed it at the last check (getWebhookInfo).")
class GatewayHealth:
    pending_updates: int | None = strawberry.field(description="Updates Telegram holds, not yet delivered.")
    last_error_at: datetime | None = strawberry.field(
        description="When Telegram last failed to deliver to the webhook."
    )
    last_error_message: str | None = strawberry.field(
        description="Telegram's words for that failure, e.g. 'Connection timed out'."
    )
    checked_at: datetime | None = strawberry.field(description="When the bot was last checked with Telegram.")


@strawberry.type(description="A connected bot. Its token and webhook secret are never exposed.")
class Gateway:
    id: strawberry.ID
    type: GatewayType
    name: str
    bot_username: str | None
    webhook_url: str
    is_active: bool = strawberry.field(
        description="Connected and working: its updates run its owner's plugins. False when it is "
        "DISCONNECTED, and while Telegram refuses its token (TOKEN_REJECTED: reconnect it with the new one)."
    )
    status: GatewayStatus = strawberry.field(description="DISCONNECTED whenever the bot is not connected.")
    status_reason: str | None = strawberry.field(description="Why it is in its status, in words.")
    delivery: Delivery
    health: GatewayHealth | None = strawberry.field(description="Null when the bot was never checked with Telegram.")
    created_at: datetime

    @classmethod
    def of(cls, row: gateway_models.Gateway, public_url: str) -> Gateway:
        # A gateway that is not connected is DISCONNECTED, whatever its last health said.
        status = row.status if row.is_active else GatewayStatus.DISCONNECTED
        return cls(
            id=strawberry.ID(row.id),
            type=row.type,
            name=row.name,
            bot_username=row.bot_username,
            webhook_url=webhook_url(public_url, row.id),
            is_active=row.is_active and row.status in WORKING_STATUSES,
            status=status,
            status_reason=row.status_reason if row.status == status else None,
            delivery=row.delivery,
            health=GatewayHealth(
                pending_updates=row.pending_updates,
                last_error_at=row.last_error_at,
                last_error_message=row.last_error_message,
                checked_at=row.checked_at,
            )
            if row.checked_at is not None
            else None,
            created_at=row.created_at,
        )


@strawberry.type(description="The caller's account.")
class Me:
    id: strawberry.ID
    email: str
    plan: Plan
    plugin_limit: int | None = strawberry.field(description="Plugins the plan allows; null means no limit.")
