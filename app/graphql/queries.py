from __future__ import annotations

from typing import Annotated

import strawberry

from app.audit import service as audit
from app.errors import BadUserInput, FieldError
from app.graphql.context import GraphQLContext
from app.graphql.types import (
    ApiToken,
    AuditEvent,
    Connection,
    Edge,
    Gateway,
    Me,
    Plugin,
    UserPlugin,
)
from app.inputs import is_id, text_problem

Info = strawberry.Info[GraphQLContext, None]

# A slug or a category that its column (varchar(64), app/plugins/models.py) could not hold, or
# that holds what a database refuses, names no plugin: answered without a query.
CATALOG_KEY_MAX = 64
AUDIT_LIMIT_MAX = audit.LIMIT_MAX


def could_be_catalog_key(value: str) -> bool:
    return len(value) <= CATALOG_KEY_MAX and text_problem(value) is None


@strawberry.type
class Query:
    @strawberry.field(description="The plugin catalog: active plugins, optionally of one category. Public.")
    async def plugins(self, info: Info, category: str | None = None) -> list[Plugin]:
        if category is not None and not could_be_catalog_key(category):
            return []
        return [Plugin.of(row) for row in await info.context.platform.catalog.available(category)]

    @strawberry.field(description="A catalog plugin by slug; null when unknown. Public.")
    async def plugin(self, info: Info, slug: str) -> Plugin | None:
        if not could_be_catalog_key(slug):
            return None
        row = await info.context.platform.catalog.by_slug(slug)
        return None if row is None else Plugin.of(row)

    @strawberry.field(description="The caller's installs, with their plugins.")
    async def my_plugins(self, info: Info) -> list[UserPlugin]:
        ctx = info.context.require_user()
        return [UserPlugin.of(row) for row in await info.context.platform.plugins.my_installs(ctx)]

    @strawberry.field(description="One of the caller's installs, by its plugin's id; null when not installed.")
    async def my_plugin(self, info: Info, plugin_id: strawberry.ID) -> UserPlugin | None:
        ctx = info.context.require_user()
        if not is_id(plugin_id):
            return None
        row = await info.context.platform.plugins.find_install(ctx, str(plugin_id))
        return None if row is None else UserPlugin.of(row)

    @strawberry.field(
        description="The caller's own audit events, newest first, a page at a time: `pageInfo.endCursor` "
        "as `after` gives the next page, until `pageInfo.hasNextPage` is false."
    )
    async def audit_events(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="1 to 500.")] = 50,
        after: Annotated[
            str | None,
            strawberry.argument(description="An `endCursor` or an edge's `cursor`: the events older than that one."),
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description='Only events of this action, e.g. "token.create".')
        ] = None,
    ) -> Connection[AuditEvent]:
        ctx = info.context.require_user()
        rows, more = await info.context.platform.audit.page_of_events(
            ctx, _audit_page_size(first, "/first"), _audit_position(after, "auditEvents"), action
        )
        return Connection.of([Edge(cursor=audit.cursor_of(row), node=AuditEvent.of(row)) for row in rows], more)

    @strawberry.field(
        description="The caller's own audit events, newest first. For the next page, pass the last "
        "event's `cursor` as `after`; a page shorter than `limit` is the last one.",
        deprecation_reason="Use auditEvents: the same events as a Connection, with pageInfo.",
    )
    async def audit_log(
        self,
        info: Info,
        limit: Annotated[int, strawberry.argument(description="1 to 500.")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="An event's `cursor`: the events older than that one.")
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description='Only events of this action, e.g. "token.create".')
        ] = None,
    ) -> list[AuditEvent]:
        ctx = info.context.require_user()
        rows = await info.context.platform.audit.list_events(
            ctx, _audit_page_size(limit, "/limit"), _audit_position(after, "auditLog"), action
        )
        return [AuditEvent.of(row) for row in rows]

    @strawberry.field(description="The caller's valid API tokens (not revoked, not expired), newest first.")
    async def my_tokens(self, info: Info) -> list[ApiToken]:
        ctx = info.context.require_user()
        return [ApiToken.of(row, ctx.token_id) for row in await info.context.platform.tokens.list_tokens(ctx.user_id)]

    @strawberry.field(description="The caller's gateways (connected bots).")
    async def my_gateways(self, info: Info) -> list[Gateway]:
        ctx = info.context.require_user()
        public_url = info.context.settings.public_url
        return [Gateway.of(row, public_url) for row in await info.context.platform.gateways.list_gateways(ctx)]

    @strawberry.field(description="The caller's account and plan.")
    async def me(self, info: Info) -> Me:
        ctx = info.context.require_user()
        user = await info.context.platform.accounts.get_user(ctx)
        limit = info.context.settings.plan_limit(user.plan.value)
        return Me(id=strawberry.ID(user.id), email=user.email, plan=user.plan, plugin_limit=limit)


def _audit_page_size(size: int, path: str) -> int:
    if not 1 <= size <= AUDIT_LIMIT_MAX:
        message = f"must be between 1 and {AUDIT_LIMIT_MAX}"
        raise BadUserInput(f"{path.lstrip('/')} {message}", [FieldError(path, message)])
    return size


def _audit_position(after: str | None, field: str) -> audit.Position | None:
    if after is None:
        return None
    position = audit.parse_cursor(after)
    if position is None:
        message = f"is not a cursor from {field}"
        raise BadUserInput(f"after {message}", [FieldError("/after", message)])
    return position
