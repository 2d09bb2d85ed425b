"""POST /webhooks/telegram/{gateway_id}: authenticate, commit, then answer. Processing comes later.

The hot path of ingest, so it is a plain ASGI app: no Request object, answers sent as prepared
messages. Every check still runs on every update, in this order: the gateway id's form, the
secret, the size; then app/gateways/intake.py's, shared with polling: the depth, the JSON, the
update's shape, whether it can be stored.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from app.db_errors import describe
from app.gateways.inbox_writer import InboxWriter
from app.gateways.intake import NotAnUpdate, take_update
from app.gateways.secrets import GatewaySecrets
from app.inputs import is_id

log = logging.getLogger(__name__)

__all__ = ["TelegramWebhook"]

SECRET_HEADER = b"x-telegram-bot-api-secret-token"
OUTAGE_LOG_EVERY_SECONDS = 5.0


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


class Answer:
    """A prepared response: its two ASGI messages, built once."""

    def __init__(self, status: int, body: bytes = b"", headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        content_type = ((b"content-type", b"application/json"),) if body else ()
        self.start = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *content_type, *headers],
        }
        self.body = {"type": "http.response.body", "body": body}

    async def __call__(self, send: Send) -> None:
        await send(self.start)
        await send(self.body)


OK = Answer(200)
UNAUTHORIZED = Answer(401, b'{"error":"unauthorized"}')
TOO_LARGE = Answer(413, b'{"error":"request body too large"}')
NOT_AN_UPDATE = Answer(400, b'{"error":"the body is not a Telegram update"}')
TRY_AGAIN = Answer(503, b'{"error":"database unavailable, try again"}', ((b"retry-after", b"1"),))


@dataclass
class TelegramWebhook:
    """The ASGI app of the webhook route."""

    inbox: InboxWriter
    secrets: GatewaySecrets
    handled_update_types: frozenset[str]
    max_body_bytes: int
    _outage_logged_at: float = field(default=float("-inf"), init=False)
    _outage_unlogged: int = field(default=0, init=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await self.handle(scope, receive)
        except Disconnected:
            return
        await answer(send)

    async def handle(self, scope: Scope, receive: Receive) -> Answer:
        gateway_id = scope["path_params"]["gateway_id"]
        if not is_id(gateway_id):  # names none of our gateways: refused without a query
            return UNAUTHORIZED
        try:
            secret = await self.secrets.secret_of(gateway_id)
        except Exception as exc:
            return self._try_again("the gateway lookup", exc)
        if secret is None or not hmac.compare_digest(header(scope, SECRET_HEADER), secret.encode()):
            return UNAUTHORIZED
        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except BodyTooLarge:
            return TOO_LARGE
        try:
            await take_update(self.inbox, self.handled_update_types, gateway_id, body)
        except NotAnUpdate:
            return NOT_AN_UPDATE
        except Exception as exc:  # InboxUnavailable, or the record could not be written
            return self._try_again("the inbox write", exc)
        return OK

    def _try_again(self, what: str, exc: Exception) -> Answer:
        """503, which Telegram retries; logged at most once every few seconds during an outage."""
        now = time.monotonic()
        self._outage_unlogged += 1
        if now - self._outage_logged_at >= OUTAGE_LOG_EVERY_SECONDS:
            log.warning(
                "webhook answered 503 (%d times since the last line): %s failed: %s",
                self._outage_unlogged,
                what,
                describe(exc),
            )
            self._outage_logged_at, self._outage_unlogged = now, 0
        return TRY_AGAIN
