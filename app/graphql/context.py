from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension

from app.accounts.context import ServiceContext
from app.errors import Unauthenticated
from app.platform import Platform
from app.settings import Settings

# The hint the CSV route gives too: a token sent without its scheme, or the scheme without a token.
BEARER_HINT = "Send your API token as 'Authorization: Bearer <token>'"


@dataclass
class GraphQLContext:
    request: HTTPConnection
    platform: Platform
    settings: Settings
    service: ServiceContext | None
    bad_token: bool = False
    # Set when the Authorization header is not `Bearer <token>`: what to tell the caller.
    authorization_hint: str | None = None
    connection_params: dict[str, object] | None = None  # graphql-transport-ws connection_init payload
    # A shared live execution (app/graphql/websocket.py): each socket that follows it checks its own
    # token before it sends, so the execution does not check the token it started with.
    shared: bool = False
    # Whether the caller installed a plugin, by its id: one query for all the plugins an operation asks about.
    installed: DataLoader[str, bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.forget_cached()

    def require_user(self) -> ServiceContext:
        if self.service is None:
            if self.authorization_hint is not None:
                raise Unauthenticated(self.authorization_hint)
            raise Unauthenticated("The API token is not valid" if self.bad_token else "An API token is required")
        return self.service

    def forget_cached(self) -> None:
        self.installed = DataLoader(load_fn=self._installed)

    async def _installed(self, plugin_ids: list[str]) -> list[bool]:
        installed = await self.platform.catalog.installed_plugin_ids(self.service, plugin_ids)
        return [plugin_id in installed for plugin_id in plugin_ids]

    async def recheck_token(self) -> bool:
        """Checks the connection's token again (a websocket outlives its token's revocation or
        expiry): whether the caller is still signed in. The token is read as on_ws_connect reads it."""
        if self.service is None:
            return False
        params = self.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if authorization is None:
            authorization = self.request.headers.get("authorization")
        token = bearer_token(str(authorization) if authorization is not None else None)
        service = await self.platform.tokens.authenticate(token) if token else None
        if service is None:
            self.service, self.bad_token = None, True
            return False
        self.service = service
        return True


class FreshCachesPerOperation(SchemaExtension):
    """A websocket keeps one context for all its operations: each one starts with empty caches,
    and with the connection's token checked again, so a revoked or expired token stops there too."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, GraphQLContext):
            context.forget_cached()
            if isinstance(context.request, WebSocket):
                await context.recheck_token()
        yield


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


async def build_context(request: HTTPConnection, platform: Platform, authorization: str | None) -> GraphQLContext:
    token = bearer_token(authorization)
    service = await platform.tokens.authenticate(token) if token else None
    return GraphQLContext(
        request=request,
        platform=platform,
        settings=platform.settings,
        service=service,
        bad_token=token is not None and service is None,
        authorization_hint=BEARER_HINT if token == "" else None,
    )
