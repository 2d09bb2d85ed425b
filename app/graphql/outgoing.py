"""What one websocket has to send: queued, written in order by one writer task, and bounded.

Nothing that produces a message waits for the client (a resolver, a shared live stream, a read
holding a database connection): it queues the message and goes on. The server's transport takes
what the client reads, up to its high-water mark (64 KiB); the rest waits here. Once what waits
passes `max_bytes` (a client that reads slower than its operations produce, or not at all), the
queue is dropped and the connection is cut off: `cut_off` is set for its reader to end it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable


class Gone(Exception):
    """The connection sends nothing more: the client left, or it was cut off or closed."""


class Outgoing:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        max_bytes: int,
    ) -> None:
        self._send_text = send_text
        self._close = close
        self.max_bytes = max_bytes
        self.waiting_bytes = 0  # queued, or handed to the server and not yet taken by its transport
        self.cut_off = asyncio.Event()
        self.finished = asyncio.Event()  # nothing more will be sent: closed, cut off, or the client left
        self._queue: deque[str | tuple[int, str]] = deque()  # texts, and a close (code, reason)
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._gone = False

    def put(self, text: str) -> None:
        """Queues a message; raises Gone when the connection sends nothing more (or is cut off now)."""
        if self._gone:
            raise Gone
        self.waiting_bytes += len(text)  # our JSON is ASCII: characters are bytes
        if self.waiting_bytes > self.max_bytes:
            self._end()
            self.cut_off.set()
            raise Gone
        self._queue.append(text)
        self._wake()

    async def close(self, code: int, reason: str) -> None:
        """Closes the connection once what was queued before has been sent, and waits until then
        (or until the connection has ended otherwise)."""
        if not self._gone:
            self._queue.append((code, reason))
            self._wake()
            await self.finished.wait()

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="websocket-writer")
        self._ready.set()

    async def _write(self) -> None:
        try:
            while True:
                while not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                item = self._queue.popleft()
                if isinstance(item, tuple):
                    self._gone = True
                    await self._close(*item)
                    return
                await self._send_text(item)
                self.waiting_bytes -= len(item)
        except Exception:  # the client is gone: what it did not take goes nowhere
            pass
        finally:
            self._end()

    def _end(self) -> None:
        self._gone = True
        self._queue.clear()
        self.waiting_bytes = 0
        self.finished.set()

    async def stop(self) -> None:
        """Drops what was not sent and ends the writer (the connection is over)."""
        self._end()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
