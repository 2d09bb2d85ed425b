"""A bound on the time a client may take to send a request: REQUEST_READ_TIMEOUT_SECONDS for its
headers, then as long again for its body. A connection that trickles bytes in (slowloris) is
answered 408 and closed, instead of holding a socket and a file descriptor for as long as it likes.

- `ReadTimeout`, an ASGI middleware: the body of each request must have arrived in full within
  the bound of the app being called (that is, of the headers being read); otherwise the request's
  handling is cancelled and the answer is 408. Once the body is in, the handler takes as long as
  it needs. A response started before the body was read closes the connection after it, so the
  unread rest cannot trickle on.
- `TimedHttpToolsProtocol`, uvicorn's httptools protocol with a timer from the moment a
  connection opens, or a request's first byte arrives, to the end of its headers (uvicorn has no
  such option: an idle new connection, or headers a byte at a time, are never cut off).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The attribute of uvicorn's Config that carries the bound to the protocol (in every worker process).
CONFIG_ATTRIBUTE = "request_read_timeout_seconds"
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


class ReadTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        reading = True
        started = False

        async def receive_body() -> Message:
            nonlocal reading
            message = await receive()
            if reading and not (message["type"] == "http.request" and message.get("more_body", False)):
                reading = False  # the whole body is in (or the client left): no deadline any more
                deadline.reschedule(None)
            return message

        async def send_response(message: Message) -> None:
            nonlocal reading, started
            if message["type"] == "http.response.start":
                started = True
                if reading:  # answered before reading it all: the rest is not waited for
                    reading = False
                    deadline.reschedule(None)
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as deadline:
                await self.app(scope, receive_body, send_response)
        except TimeoutError:
            if not deadline.expired() or started:
                raise
            await send({"type": "http.response.start", "status": 408, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                (b"content-length", str(len(TIMED_OUT)).encode()),
            ]})
            await send({"type": "http.response.body", "body": TIMED_OUT})


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the time to receive a request's headers bounded."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.read_timeout: float | None = getattr(config, CONFIG_ATTRIBUTE, None)
        self.read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.read_timer is None:  # a new connection's timer runs on from connection_made
            self._start_timer()

    def on_headers_complete(self) -> None:
        self._stop_timer()  # the body is ReadTimeout's; a websocket's life is its own
        super().on_headers_complete()

    def _start_timer(self) -> None:
        if self.read_timeout is not None:
            self.read_timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def _stop_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _timed_out(self) -> None:
        self.read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The next request's headers (pipelined) wait for this answer: give them time after it.
            self._start_timer()
            return
        self.transport.write(_TIMED_OUT_RESPONSE)
        self.transport.close()
