from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.accounts import tokens
from app.analytics.titles import chat_titles
from app.errors import BadUserInput, FieldError, NotFound
from app.graphql.context import GraphQLContext
from app.graphql.types import ApiToken, ChainRun, CreatedApiToken, Gateway, PluginRun, UserPlugin
from app.inputs import is_id, text_problem
from app.plugins.contract import ConfigUpdateRequest, InstallRequest
from app.plugins.steps import MAX_STEPS, ChainStep

Info = strawberry.Info[GraphQLContext, None]


def known_id(value: strawberry.ID, what: str) -> str:
    """An id as we hand them out; anything else names nothing, answered as an unknown id is,
    without a query (and without a value too long for its column reaching the database)."""
    if not is_id(value):
        raise NotFound(f"No such {what}")
    return str(value)


@strawberry.input(description="One step of runChain.")
class ChainStepInput:
    plugin_id: strawberry.ID
    input: JSON | None = strawberry.field(
        default=None, description="The step's input; when null, the output of the step before."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Installs a catalog plugin for the caller, within the plan's limit.")
    async def install_plugin(self, info: Info, plugin_id: strawberry.ID, config: JSON | None = None) -> UserPlugin:
        ctx = info.context.require_user()
        request = InstallRequest(plugin_id=known_id(plugin_id, "plugin"), config=config)
        return UserPlugin.of(await info.context.platform.plugins.install(ctx, request))

    @strawberry.mutation
    async def uninstall_plugin(self, info: Info, plugin_id: strawberry.ID) -> bool:
        ctx = info.context.require_user()
        return await info.context.platform.plugins.uninstall(ctx, known_id(plugin_id, "plugin"))

    @strawberry.mutation(description="Replaces the install's config; defaults are filled in.")
    async def update_plugin_config(self, info: Info, plugin_id: strawberry.ID, config: JSON) -> UserPlugin:
        ctx = info.context.require_user()
        request = ConfigUpdateRequest(plugin_id=known_id(plugin_id, "plugin"), config=config)
        return UserPlugin.of(await info.context.platform.plugins.update_config(ctx, request))

    @strawberry.mutation
    async def toggle_plugin(self, info: Info, plugin_id: strawberry.ID, enabled: bool) -> UserPlugin:
        ctx = info.context.require_user()
        return UserPlugin.of(await info.context.platform.plugins.toggle(ctx, known_id(plugin_id, "plugin"), enabled))

    @strawberry.mutation(
        description="Runs a failed or skipped run's plugin again on the run's stored event, once: calling it "
        "again answers with the same retry."
    )
    async def retry_run(self, info: Info, run_id: strawberry.ID) -> PluginRun:
        ctx = info.context.require_user()
        run = await info.context.platform.run_history.retry_run(ctx, known_id(run_id, "run"))
        return PluginRun.of(run, await chat_titles(ctx.user_id, [run.chat_id] if run.chat_id is not None else []))

    @strawberry.mutation(
        description="Runs the caller's install of the plugin now (trigger STANDALONE) on `input`, checked against "
        "the plugin's inputSchema (defaults filled in), and answers the finished run: its outcome, output and "
        "figures. Runs on demand are limited to RUNS_PER_MINUTE a user (RATE_LIMITED)."
    )
    async def run_plugin(self, info: Info, plugin_id: strawberry.ID, input: JSON | None = None) -> PluginRun:
        ctx = info.context.require_user()
        run = await info.context.platform.steps.run_plugin(ctx, known_id(plugin_id, "plugin"), input)
        return PluginRun.of(run)

    @strawberry.mutation(
        description=f"Runs 1 to {MAX_STEPS} of the caller's installs in order (trigger WORKFLOW_STEP): a step "
        "without `input` takes the output of the step before. The first failure stops the chain; the steps "
        "after it are recorded as not run. Each step counts against RUNS_PER_MINUTE."
    )
    async def run_chain(
        self,
        info: Info,
        steps: list[ChainStepInput],
        variables: Annotated[
            JSON | None, strawberry.argument(description="A JSON object every step sees as ctx.execution.variables.")
        ] = None,
    ) -> ChainRun:
        ctx = info.context.require_user()
        chain = [ChainStep(known_id(step.plugin_id, "plugin"), step.input) for step in steps]
        result = await info.context.platform.steps.run_chain(ctx, chain, variables)
        return ChainRun(
            id=strawberry.ID(result.id),
            status=result.status,
            steps=[PluginRun.of(run) for run in result.steps],
            output=None if result.output is None else JSON(result.output),
        )

    @strawberry.mutation(description="Checks the token with Telegram and points the bot's webhook here.")
    async def connect_telegram_bot(self, info: Info, token: str, name: str | None = None) -> Gateway:
        ctx = info.context.require_user()
        if name is not None and (problem := text_problem(name)):
            raise BadUserInput(f"Name {problem}", [FieldError("/name", problem)])
        gateway = await info.context.platform.gateways.connect_telegram_bot(ctx, token, name)
        return Gateway.of(gateway, info.context.settings.public_url)

    @strawberry.mutation(description="Deletes the bot's webhook and deactivates the gateway.")
    async def disconnect_gateway(self, info: Info, gateway_id: strawberry.ID) -> bool:
        ctx = info.context.require_user()
        return await info.context.platform.gateways.disconnect(ctx, known_id(gateway_id, "gateway"))

    @strawberry.mutation(
        description="Checks the bot with Telegram now, as the periodic health check does: its registration "
        "(webhook URL, update types) is repaired when it drifted, and its status and health are brought up to date."
    )
    async def check_gateway(self, info: Info, gateway_id: strawberry.ID) -> Gateway:
        ctx = info.context.require_user()
        row = await info.context.platform.monitor.check_for(ctx, known_id(gateway_id, "gateway"))
        return Gateway.of(row, info.context.settings.public_url)

    @strawberry.mutation(
        description="Creates an API token for the caller. The answer is the only time the token is shown."
    )
    async def create_api_token(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="1 to 64 characters, to tell your tokens apart.")],
        expires_in_days: Annotated[
            int | None, strawberry.argument(description=f"1 to {tokens.MAX_EXPIRES_DAYS}; null: never expires.")
        ] = None,
    ) -> CreatedApiToken:
        ctx = info.context.require_user()
        row, token = await info.context.platform.tokens.create_token(ctx.user_id, name, expires_in_days, via="api")
        return CreatedApiToken(token=token, api_token=ApiToken.of(row, ctx.token_id))

    @strawberry.mutation(
        description="Revokes one of the caller's tokens: it stops working at once in every process (within a "
        "second should the pub/sub be down). The caller's last valid token cannot be revoked this way."
    )
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> bool:
        ctx = info.context.require_user()
        platform = info.context.platform
        revoked = await platform.tokens.revoke_token(
            known_id(id, "token"), via="api", owner_id=ctx.user_id, keep_last=True
        )
        await platform.sockets.ended([revoked.token.id])  # its open websockets, in every process
        return True
