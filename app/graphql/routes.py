from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.graphql.view import FRONTEND_DIST, PlugboardGraphQL
from app.platform import Platform


def too_large() -> JSONResponse:
    return JSONResponse({"errors": [{"message": "Request body too large"}]}, status_code=413)


class LimitBody:
    """Refuses request bodies over `max_bytes` with 413, reading no more than that."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large()(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await too_large()(scope, receive, send)
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
        Route("/graphql", LimitBody(view, platform.settings.max_body_bytes), methods=None),
        WebSocketRoute("/graphql", view),
    ]
    if FRONTEND_DIST.is_dir():
        routes.append(Mount("/static", app=StaticFiles(directory=FRONTEND_DIST), name="static"))
    return routes
