"""What one websocket has to send: queued, written in order by one writer task, and bounded.

Nothing that produces a message waits for the client (a resolver, a shared live stream, a read
holding a database connection): it queues the message and goes on. The writer hands the messages
to the server one at a time, in order. The server's transport holds what the client has not read
yet up to its high-water mark (64 KiB) and one message beyond; the server takes the next message
only once that has drained, so a message handed over is one the client is taking.

A live summary (`put_latest`) is a snapshot of its subscription, and a newer one supersedes it.
While one is still queued, the next one for the same operation id replaces its text where it
stands: it keeps its place in the queue (a subscription that changes often is not pushed back
behind the others, and a `complete` or `error` queued for that id after it stays after it; a
summary that comes after such a message is queued anew, behind it). So what waits is at most one
summary per subscription, the other messages (`put`: results, `complete`, `error`, which are never
dropped), and the message being handed over. A burst larger than `max_bytes` (20 summaries of
200 KB at once) waits and goes out as the client reads.

A message put while nothing waits and nothing is being handed over is handed over at once, in the
putter's task: the server takes it without suspending unless the transport is full, and then the
writer task finishes handing it over before anything queued after it. So a live summary reaches
its clients' transports as soon as it is rendered, without a task wake-up for each client.

The connection is cut off (the queue is dropped, `reason` says why, `cut_off` is set and its reader
closes it with 1008) when:
- the client takes nothing while summaries of one subscription worth more than `max_bytes` are
  replaced unsent: it has stopped reading (one that takes a message now and then, however slowly,
  gets each subscription's newest summary whenever it reads);
- the other messages waiting pass `max_bytes`;
- everything waiting would pass the hard bound, `HARD_FACTOR` x `max_bytes`.

Memory: what waits here for one connection never passes `HARD_FACTOR` x `max_bytes` (8 MB at the
default WEBSOCKET_SEND_BUFFER_BYTES of 1,000,000); the transport holds at most its high-water mark
and one message more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app import inline

HARD_FACTOR = 8


class Gone(Exception):
    """The connection sends nothing more: the client left, or it was cut off or closed."""


class _Message:
    __slots__ = ("text", "latest_of", "replaced_bytes", "taken_mark")

    def __init__(self, text: str, latest_of: str | None, taken_mark: int) -> None:
        self.text = text
        self.latest_of = latest_of  # the operation id whose newer summary replaces this one
        self.replaced_bytes = 0  # summaries it replaced since the client last took a message
        self.taken_mark = taken_mark


class Outgoing:
    def __init__(
        self,
        send_text: Callable[[str], Coroutine[Any, Any, None]],
        close: Callable[[int, str], Awaitable[None]],
        max_bytes: int,
    ) -> None:
        self._send_text = send_text
        self._close = close
        self.max_bytes = max_bytes
        self.hard_bytes = HARD_FACTOR * max_bytes
        # Sizes are len(text): our JSON is ASCII, so characters are bytes.
        self.waiting_bytes = 0  # queued, and the message being handed over
        self.fixed_bytes = 0  # queued messages that nothing replaces
        self.taken = 0  # messages the server has taken
        self.reason = ""  # why it was cut off
        self.cut_off = asyncio.Event()
        self.finished = asyncio.Event()  # nothing more will be sent: closed, cut off, or the client left
        self._queue: deque[_Message | tuple[int, str]] = deque()  # messages, and a close (code, reason)
        self._latest: dict[str, _Message] = {}  # the summary still queued for each operation id
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._busy = False  # a message is being handed over
        self._in_hand: tuple[inline.Started[None], int] | None = None  # begun at once, suspended: the writer's
        self._gone = False

    def put(self, text: str, operation_id: str | None = None) -> None:
        """Queues a message that nothing replaces (a result, a `complete`, an `error`); a summary
        of `operation_id` put after it goes behind it. Raises Gone when the connection sends
        nothing more (or is cut off now)."""
        if self._gone:
            raise Gone
        if operation_id is not None:
            self._latest.pop(operation_id, None)
        self._grow(len(text))
        if self._free:
            self._hand_over_now(text)
            return
        self.fixed_bytes += len(text)
        if self.fixed_bytes > self.max_bytes:
            self._cut(f"Too slow: more than {self.max_bytes} bytes waiting to be sent")
        self._queue.append(_Message(text, None, self.taken))
        self._wake()

    def put_latest(self, operation_id: str, text: str) -> None:
        """Queues the newest summary of `operation_id`, in place of one still waiting."""
        if self._gone:
            raise Gone
        queued = self._latest.get(operation_id)
        if queued is None:
            self._grow(len(text))
            if self._free:
                self._hand_over_now(text)
                return
            self._latest[operation_id] = message = _Message(text, operation_id, self.taken)
            self._queue.append(message)
            self._wake()
            return
        if queued.taken_mark != self.taken:  # the client took something since: it is reading
            queued.replaced_bytes, queued.taken_mark = 0, self.taken
        queued.replaced_bytes += len(queued.text)
        if queued.replaced_bytes > self.max_bytes:
            self._cut(f"Too slow: took nothing while more than {self.max_bytes} bytes of updates were replaced")
        self._grow(len(text) - len(queued.text))
        queued.text = text

    def _grow(self, size: int) -> None:
        if self.waiting_bytes + size > self.hard_bytes:
            self._cut(f"Too slow: more than {self.hard_bytes} bytes waiting to be sent")
        self.waiting_bytes += size

    def _cut(self, reason: str) -> None:
        self.reason = reason
        self._end()
        self.cut_off.set()
        raise Gone

    def cut(self, reason: str) -> None:
        """Cuts the connection off from outside: for a close its client never takes."""
        with contextlib.suppress(Gone):
            self._cut(reason)

    async def close(self, code: int, reason: str) -> None:
        """Closes the connection once what was queued before has been sent, and waits until then
        (or until the connection has ended otherwise)."""
        if not self._gone:
            self._queue.append((code, reason))
            self._wake()
            await self.finished.wait()

    @property
    def _free(self) -> bool:
        """Nothing waits and nothing is being handed over: a message may go at once."""
        return not self._busy and not self._queue

    def _hand_over_now(self, text: str) -> None:
        """Hands `text` over in this task, until the server takes it or suspends (its transport is
        full: the writer then finishes it, before anything queued after it)."""
        self._busy = True
        try:
            started = inline.start(self._send_text(text))
        except Exception:  # the client is gone
            self._end()
            return
        if not started.done:
            self._in_hand = (started, len(text))
            self._wake()
            return
        self._busy = False
        self._handed(len(text))

    def _handed(self, size: int) -> None:
        self.waiting_bytes -= size
        self.taken += 1

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="websocket-writer")
        self._ready.set()

    async def _write(self) -> None:
        try:
            while True:
                while not self._queue and self._in_hand is None:
                    self._ready.clear()
                    await self._ready.wait()
                if self._in_hand is not None:  # begun at once, suspended: it goes before the queue
                    (started, size), self._in_hand = self._in_hand, None
                    await started.rest()
                    self._busy = False
                    self._handed(size)
                    continue
                item = self._queue.popleft()
                if isinstance(item, tuple):
                    self._gone = True
                    await self._close(*item)
                    return
                if item.latest_of is None:
                    self.fixed_bytes -= len(item.text)
                elif self._latest.get(item.latest_of) is item:
                    del self._latest[item.latest_of]  # handed over: a newer summary queues anew
                self._busy = True
                await self._send_text(item.text)
                self._busy = False
                self._handed(len(item.text))
        except Exception:  # the client is gone: what it did not take goes nowhere
            pass
        finally:
            self._end()

    def _end(self) -> None:
        self._gone = True
        self._queue.clear()
        self._latest.clear()
        self.waiting_bytes = self.fixed_bytes = 0
        self.finished.set()

    async def stop(self) -> None:
        """Drops what was not sent and ends the writer (the connection is over)."""
        self._end()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
