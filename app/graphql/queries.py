from __future__ import annotations

import strawberry

from app.accounts import service as accounts
from app.audit import service as audit
from app.gateways import service as gateways
from app.graphql.context import GraphQLContext
from app.graphql.types import AuditEvent, Gateway, Me, Plugin, UserPlugin

Info = strawberry.Info[GraphQLContext, None]


@strawberry.type
class Query:
    @strawberry.field(description="The plugin catalog: active plugins, optionally of one category. Public.")
    async def plugins(self, info: Info, category: str | None = None) -> list[Plugin]:
        return [Plugin.of(row) for row in await info.context.platform.plugins.available(category)]

    @strawberry.field(description="A catalog plugin by slug; null when unknown. Public.")
    async def plugin(self, info: Info, slug: str) -> Plugin | None:
        row = await info.context.platform.plugins.by_slug(slug)
        return None if row is None else Plugin.of(row)

    @strawberry.field(description="The caller's installs, with their plugins.")
    async def my_plugins(self, info: Info) -> list[UserPlugin]:
        ctx = info.context.require_user()
        return [UserPlugin.of(row) for row in await info.context.platform.plugins.my_installs(ctx)]

    @strawberry.field(description="The caller's own audit events, newest first.")
    async def audit_log(self, info: Info, limit: int = 50) -> list[AuditEvent]:
        ctx = info.context.require_user()
        return [AuditEvent.of(row) for row in await audit.list_events(ctx, limit)]

    @strawberry.field(description="The caller's gateways (connected bots).")
    async def my_gateways(self, info: Info) -> list[Gateway]:
        ctx = info.context.require_user()
        public_url = info.context.settings.public_url
        return [Gateway.of(row, public_url) for row in await gateways.list_gateways(ctx)]

    @strawberry.field(description="The caller's account and plan.")
    async def me(self, info: Info) -> Me:
        ctx = info.context.require_user()
        user = await accounts.get_user(ctx)
        limit = info.context.settings.plan_limit(user.plan.value)
        return Me(id=strawberry.ID(user.id), email=user.email, plan=user.plan, plugin_limit=limit)
