"""Serving an ASGI app over real HTTP on loopback, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from app.serve import KEEP_ALIVE_SECONDS


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its own signals
        yield


class LiveServer:
    """`options` go to uvicorn.Config, over the defaults (e.g. ssl_certfile, lifespan).
    `send_buffer_bytes` sets SO_SNDBUF on the listening socket, which its connections inherit: a
    client that stops reading then fills the server's side in kilobytes, not the megabytes that
    loopback's autotuning gives."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", send_buffer_bytes: int | None = None, **options: Any
    ) -> None:
        self.app = app
        self.host = host
        self.send_buffer_bytes = send_buffer_bytes
        self.options = options
        self.port = 0
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # IPPROTO_TCP, or asyncio never sets TCP_NODELAY: each response would wait ~40 ms for
        # the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.send_buffer_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        defaults = {
            "log_level": "warning",
            "lifespan": "on",
            "ws": "websockets-sansio",
            "timeout_keep_alive": KEEP_ALIVE_SECONDS,  # as `serve`: past clients' own idle expiry
        }
        config = uvicorn.Config(self.app, **{**defaults, **self.options})
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the start-up error
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = None
            self._task = None

    async def __aenter__(self) -> LiveServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
