"""Restarting the app the way an operator does: the server stops, and a new one (a new process
state, the same database) starts on the same address."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp

from tests.support.live import LiveApp
from tests.support.server import LiveServer, _Server


class SamePortServer(LiveServer):
    """A LiveServer on a given port, for a server that comes back where the old one was."""

    def __init__(self, app: ASGIApp, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(app, host)
        self.wanted_port = port

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.wanted_port))
        self.port = self.wanted_port
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", ws="websockets-sansio")
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)


async def start_again(stopped: LiveApp) -> LiveApp:
    """A new app with the stopped one's settings, on its port."""
    again = LiveApp(stopped.settings)
    again.server = SamePortServer(again.app, stopped.server.port)
    return await again.start()
