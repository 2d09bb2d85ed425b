"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.analytics.routes import CSV_PATH, analytics_csv
from app.gateways.service import WEBHOOK_PATH
from app.gateways.webhook import TelegramWebhook
from app.platform import Platform
from app.plugins.contract import PluginHandler
from app.read_timeout import ReadTimeout
from app.settings import Settings

PING_TIMEOUT_SECONDS = 2.0


class DatabaseContext:
    """Makes the app's database context current in every request's task."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        token = self.platform.db.bind()  # not `with db.bound()`: every request pays for it
        try:
            await self.app(scope, receive, send)
        finally:
            self.platform.db.unbind(token)


class WebhookFirst:
    """Hands the webhook's POSTs straight to it, past Starlette's exception handling and routing:
    the hot path of ingest, whose app answers every outcome itself. Anything else goes on."""

    def __init__(self, app: ASGIApp, webhook: ASGIApp, prefix: str) -> None:
        self.app = app
        self.webhook = webhook
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(self.prefix):
                gateway_id = path[len(self.prefix) :]
                if gateway_id and "/" not in gateway_id:  # what the route's {gateway_id} matches
                    scope["path_params"] = {"gateway_id": gateway_id}
                    await self.webhook(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def healthz(request: Request) -> JSONResponse:
    """200 while the database answers and every background loop of this process beats; otherwise
    503, naming what is wrong. Costs one `SELECT 1`, bounded in time."""
    platform: Platform = request.app.state.platform
    body: dict[str, Any] = {"status": "ok"}
    try:
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            answers = await platform.db.ping()
    except TimeoutError:
        answers = False
    body["database"] = "ok" if answers else "unavailable"
    stalled = []
    for heartbeat in platform.heartbeats():
        if heartbeat.stalled():
            stalled.append(heartbeat.name)
            body[heartbeat.name] = f"stalled: no heartbeat for {heartbeat.age():.1f} s"
        else:
            body[heartbeat.name] = "ok"
    if answers and not stalled:
        return JSONResponse(body)
    body["status"] = "unavailable"
    body["stalled"] = stalled
    return JSONResponse(body, status_code=503)


def create_app(
    settings: Settings | None = None, handlers: Iterable[PluginHandler] | None = None, *, freeze_heap: bool = False
) -> Starlette:
    """The app; with `freeze_heap`, what start-up leaves is frozen (app.serve.freeze_heap) once it
    has started, as a server process wants and a test that starts many apps does not."""
    settings = settings or Settings.from_env()
    platform = Platform(settings, handlers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        if freeze_heap:
            from app.serve import freeze_heap as freeze

            freeze()
        try:
            yield
        finally:
            await platform.stop()

    webhook = TelegramWebhook(
        inbox=platform.inbox,
        secrets=platform.gateway_secrets,
        handled_update_types=frozenset(platform.update_types),
        max_body_bytes=settings.webhook_max_body_bytes,
    )
    from app.graphql.routes import graphql_routes
    from app.web import web_routes

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route(CSV_PATH, analytics_csv(platform.analytics, platform.tokens), methods=["GET"]),
            *graphql_routes(platform),
            *web_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.add_middleware(WebhookFirst, webhook=webhook, prefix=WEBHOOK_PATH.removesuffix("{gateway_id}"))
    app.add_middleware(DatabaseContext, platform=platform)
    app.add_middleware(ReadTimeout, seconds=settings.request_read_timeout_seconds)  # outermost
    return app


def create_served_app() -> Starlette:
    """The app as `python -m app serve` runs it (uvicorn's factory)."""
    return create_app(freeze_heap=True)
