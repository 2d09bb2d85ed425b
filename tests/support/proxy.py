"""A TCP proxy on loopback that a test can cut: every connection through it dropped at once, and
new ones dropped as they come, until it is restored. It runs on a thread and an event loop of its
own, so that a busy app in the test's loop cannot delay a cut, and the app's driver sees what a
flapping network does to it: connections reset in the middle of a statement or a commit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cuts = 0
        self.dropped = 0  # connections dropped by a cut or while down
        self._up = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()  # cleared: bytes are held, as by a network that stopped answering
        self._flowing.set()

    async def start(self) -> TcpProxy:
        self._thread.start()
        await self._call(self._listen())
        return self

    async def stop(self) -> None:
        await self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    async def cut(self) -> None:
        """Drops every open connection (a reset, as a network that fails does) and every new one."""
        await self._call(self._cut())

    async def restore(self) -> None:
        await self._call(self._restore())

    async def freeze(self) -> None:
        """Connections stay open, but nothing goes through them until `thaw` (a blackhole)."""
        await self._call(self._set_flowing(False))

    async def thaw(self) -> None:
        await self._call(self._set_flowing(True))

    async def flap(self, down_seconds: float, every_seconds: float, for_seconds: float) -> None:
        """Down for `down_seconds` at the start of every `every_seconds`, for `for_seconds`. The
        sleeps are the fault's own timing (what is being simulated), not a wait for the app."""
        loop = asyncio.get_running_loop()
        end = loop.time() + for_seconds
        try:
            while loop.time() < end:
                started = loop.time()
                await self.cut()
                await asyncio.sleep(down_seconds)
                await self.restore()
                await asyncio.sleep(max(0.0, every_seconds - (loop.time() - started)))
        finally:
            await self.restore()

    # -- on the proxy's own loop -----------------------------------------------------------

    async def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _cut(self) -> None:
        self._up = False
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()
            self.dropped += 1
        self._writers.clear()

    async def _restore(self) -> None:
        self._up = True

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self._up:
            client_writer.transport.abort()
            self.dropped += 1
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        if not self._up:  # cut while connecting
            client_writer.transport.abort()
            server_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(
            self._pipe(client_reader, server_writer, client_writer),
            self._pipe(server_reader, client_writer, server_writer),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):  # reset: the other side is reset too
            for side in (writer, other):
                self._writers.discard(side)
                side.transport.abort()
        else:  # an orderly end: what was written still arrives
            self._writers.discard(writer)
            writer.close()


@contextlib.asynccontextmanager
async def tcp_proxy(host: str, port: int) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy(host, port).start()
    try:
        yield proxy
    finally:
        await proxy.stop()
