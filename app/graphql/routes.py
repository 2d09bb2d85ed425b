from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ErrorCode
from app.graphql.view import FRONTEND_DIST, PlugboardGraphQL
from app.platform import Platform
from app.settings import Settings


def graphql_body_bytes(settings: Settings) -> int:
    """The largest GraphQL request body: room for a document at its limit and variables at theirs,
    written with JSON escapes (a client that escapes non-ASCII text doubles or triples it), and
    never more than MAX_BODY_BYTES. Checked before the body's JSON is parsed into objects."""
    return min(settings.max_body_bytes, settings.max_query_bytes + 2 * settings.max_variables_bytes)


class LimitBody:
    """Refuses request bodies over `max_bytes` with 413, reading no more than that."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self) -> JSONResponse:
        message = f"The request body is larger than {self.max_bytes} bytes; pass smaller variables."
        return JSONResponse(
            {"errors": [{"message": message, "extensions": {"code": ErrorCode.REQUEST_TOO_LARGE}}]}, status_code=413
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large()(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self.too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def graphql_routes(platform: Platform) -> list[BaseRoute]:
    view = PlugboardGraphQL(platform)
    routes: list[BaseRoute] = [
        Route("/graphql", LimitBody(view, graphql_body_bytes(platform.settings)), methods=None),
        WebSocketRoute("/graphql", view),
    ]
    if FRONTEND_DIST.is_dir():
        routes.append(Mount("/static", app=StaticFiles(directory=FRONTEND_DIST), name="static"))
    return routes
