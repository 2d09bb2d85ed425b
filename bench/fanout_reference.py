"""The fan-out reference: a bare Starlette websocket broadcast.

Clients connect to `/ws/{group}` and only listen. `POST /trigger/{group}` answers 200 at once and
then sends the request's body, as one text message, to every client of the group. Nothing else:
no protocol, no authentication, no database, so it is the floor for "a change reaches N sockets".

Its garbage collector is set as our server's is (app.serve.freeze_heap, once started): with
Python's defaults, a full collection over its 1,000 sockets pauses it for about 100 ms once every
few rounds, and that pause, not the broadcast, would be its p99.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.serve import freeze_heap


class Groups:
    def __init__(self) -> None:
        self.members: defaultdict[str, set[WebSocket]] = defaultdict(set)

    async def broadcast(self, group: str, text: str) -> None:
        await asyncio.gather(*(ws.send_text(text) for ws in list(self.members[group])), return_exceptions=True)


def create_app() -> Starlette:
    groups = Groups()

    async def listen(websocket: WebSocket) -> None:
        group = websocket.path_params["group"]
        await websocket.accept()
        groups.members[group].add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            groups.members[group].discard(websocket)

    async def trigger(request: Request) -> Response:
        text = (await request.body()).decode()
        return Response(
            status_code=200, background=BackgroundTask(groups.broadcast, request.path_params["group"], text)
        )

    async def ready(request: Request) -> Response:
        return Response("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        freeze_heap()
        yield

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", ready),
            Route("/trigger/{group}", trigger, methods=["POST"]),
            WebSocketRoute("/ws/{group}", listen),
        ],
    )


app = create_app()
