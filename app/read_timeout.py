"""A bound on the time a client may take to send a request: REQUEST_READ_TIMEOUT_SECONDS. A client
that trickles bytes in (slowloris), or connects and sends nothing, is answered 408 and cut off,
instead of holding a socket and a file descriptor for as long as it likes.

- `TimedHttpToolsProtocol`: uvicorn's httptools protocol as `serve` runs it. A request, headers
  and body, must have arrived within the bound of the connection opening or of the request's first
  byte (uvicorn has no such option: an idle new connection, or headers a byte at a time, are never
  cut off). It costs a request a clock reading: one timer per server looks for connections past
  the bound every quarter of it, so one is cut off between 1 and 1.25 times the bound. A response
  given before the body was read (a 401, a 413) does not make the rest of it free to trickle on:
  the connection is closed at the bound if the body has not arrived by then.
- `ReadTimeout`: the same for the body alone, as an ASGI middleware, for any other server (the
  tests', uvicorn run by hand), from the moment the app is called; under `serve` the protocol
  has done it, and the middleware steps aside.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# The attribute of uvicorn's Config that carries the bound to the protocol (in every worker process).
CONFIG_ATTRIBUTE = "request_read_timeout_seconds"
# The scope extension by which the protocol tells the middleware that it bounds the body itself.
BOUNDED_BY_SERVER = "plugboard.request_read_timeout"
TIMED_OUT = b"Request Timeout: the request was not received in time\n"
_TIMED_OUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: " + str(len(TIMED_OUT)).encode() + b"\r\n\r\n" + TIMED_OUT
)


def has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


@dataclass(eq=False)
class _Reading:
    """A request whose body is still being read."""

    deadline: float
    task: asyncio.Task[Any] | None
    active: bool = True
    expired: bool = False


class ReadTimeout:
    """Requests whose body has not arrived in full `seconds` after the app was called are
    cancelled and answered 408. One timer for all of them, running only while some body is still
    being read, looks for those past their deadline every quarter of `seconds`: a request that
    arrives whole (nearly all of them) costs a dict entry, not a timer of its own."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self.sweep_every = max(seconds / 4, 0.01)
        self._reading: dict[int, _Reading] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweeper_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or BOUNDED_BY_SERVER in scope.get("extensions", ()) or not has_body(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        reading = _Reading(loop.time() + self.seconds, asyncio.current_task())
        key = id(reading)
        self._reading[key] = reading
        if self._sweeper is None or self._sweeper_loop is not loop:
            self._sweeper, self._sweeper_loop = loop.call_later(self.sweep_every, self._sweep), loop

        async def receive_body() -> Message:
            message = await receive()
            if reading.active and not (message["type"] == "http.request" and message.get("more_body", False)):
                reading.active = False  # the whole body is in (or the client left): no deadline any more
                self._reading.pop(key, None)
            return message

        async def send_response(message: Message) -> None:
            if reading.active and message["type"] == "http.response.start":
                # Answered before the body was read: a response under way is not cut short. What is
                # left of the body is the server's to read or drop (ASGI cannot close the connection).
                reading.active = False
                self._reading.pop(key, None)
            await send(message)

        try:
            await self.app(scope, receive_body, send_response)
        except asyncio.CancelledError:
            if not reading.expired or reading.task is None:
                raise
            reading.task.uncancel()
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"connection", b"close"),
                        (b"content-length", str(len(TIMED_OUT)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": TIMED_OUT})
        finally:
            self._reading.pop(key, None)

    def _sweep(self) -> None:
        assert self._sweeper_loop is not None
        now = self._sweeper_loop.time()
        for key, reading in list(self._reading.items()):
            if reading.deadline <= now:
                del self._reading[key]
                reading.active, reading.expired = False, True
                if reading.task is not None:
                    reading.task.cancel()
        self._sweeper = self._sweeper_loop.call_later(self.sweep_every, self._sweep) if self._reading else None


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the time to receive a request bounded."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.read_timeout: float | None = getattr(config, CONFIG_ATTRIBUTE, None)
        self.reading_since: float | None = None  # while a request is being received
        self.headers_done = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.read_timeout is not None:
            self.reading_since = self.loop.time()
            watch(self.server_state, self.loop, self.read_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers_done = False
        if self.read_timeout is not None:
            if self.reading_since is None:  # a new connection's clock runs on from connection_made
                self.reading_since = self.loop.time()
            self.scope.setdefault("extensions", {})[BOUNDED_BY_SERVER] = {}

    def on_headers_complete(self) -> None:
        self.headers_done = True
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():  # a websocket: its life is its own
            self.reading_since = None

    def on_message_complete(self) -> None:
        self.reading_since = None
        super().on_message_complete()

    def read_timed_out(self) -> None:
        self.reading_since = None
        if self.transport.is_closing():
            return
        if self.pipeline:  # reading is paused while earlier requests are answered: not the client's doing
            self.reading_since = self.loop.time()
            return
        if not self.headers_done or not self.cycle.response_started:
            self.transport.write(_TIMED_OUT_RESPONSE)  # the handler, if any, sees the client leave
        self.transport.close()


# Per uvicorn server: the timer that looks for connections past the bound, while there are any.
_watchers: weakref.WeakKeyDictionary[ServerState, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


def watch(state: ServerState, loop: asyncio.AbstractEventLoop, bound: float) -> None:
    if state not in _watchers:
        _watchers[state] = loop.call_later(max(bound / 4, 0.01), _sweep, state, loop, bound)


def _sweep(state: ServerState, loop: asyncio.AbstractEventLoop, bound: float) -> None:
    del _watchers[state]
    now = loop.time()
    for protocol in list(state.connections):
        if isinstance(protocol, TimedHttpToolsProtocol) and protocol.reading_since is not None:
            if now - protocol.reading_since >= bound:
                protocol.read_timed_out()
    if state.connections:
        watch(state, loop, bound)
