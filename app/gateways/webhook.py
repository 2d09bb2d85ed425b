"""POST /webhooks/telegram/{gateway_id}: authenticate, commit, then answer. Processing comes later.

The hot path of ingest, so it is a plain ASGI app: no Request object, answers sent as prepared
messages. Every check still runs on every update, in this order: the gateway id's form, the
secret, the size, the depth, the JSON, the update's shape, whether it can be stored.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from app.db_errors import describe
from app.gateways import inbox, storable
from app.gateways.inbox import InboxWriter, RowRefused
from app.gateways.models import EventKind
from app.gateways.secrets import GatewaySecrets
from app.inputs import is_id, json_depth_exceeds
from app.plugins.events import UPDATE_KINDS

log = logging.getLogger(__name__)

SECRET_HEADER = b"x-telegram-bot-api-secret-token"
# The kinds of update the Bot API sends (aiogram's `Update` fields less update_id; a test checks
# them against aiogram). Written out so that taking an update in never imports aiogram's types.
UPDATE_FIELDS = frozenset((
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "guest_message",
    "message_reaction", "message_reaction_count", "inline_query", "chosen_inline_result",
    "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll",
    "poll_answer", "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
    "removed_chat_boost", "managed_bot", "subscription", "stopped_message_generation",
))
# Telegram nests an update a handful of levels deep; json.loads recurses once per level.
MAX_JSON_DEPTH = 64
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


def update_type(data: dict[str, Any]) -> str | None:
    """The kind of update, read from its keys (an update carries exactly one besides update_id)."""
    for key in data:
        if key in UPDATE_FIELDS:
            return key
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chat_of(event: dict[str, Any]) -> int | None:
    """The chat whose events must run in order: a message's chat, a callback's message's chat."""
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    if _is_int(chat.get("id")):
        return chat["id"]
    sender = event.get("from") or {}
    return sender.get("id") if _is_int(sender.get("id")) else None


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
            if json_depth_exceeds(body, MAX_JSON_DEPTH):
                raise ValueError("nested too deep")
            text = body.decode("utf-8")
            data, suspect = storable.parse(text)
            if not isinstance(data, dict) or not _is_int(data.get("update_id")):
                raise ValueError("not an update")
            kind = update_type(data)
            if kind not in self.handled_update_types:
                # Acknowledged unread: a kind no plugin handles, or one newer than this list.
                return OK
            known = UPDATE_KINDS.get(kind)  # the one table of update kinds: app/plugins/events.py
            if known is not None and not known.shape(data[kind]):
                raise ValueError(f"not a {kind}")
        except ValueError:
            return NOT_AN_UPDATE
        update_id = str(data["update_id"])
        problem = storable.problem(data, MAX_JSON_DEPTH) if suspect else None
        try:
            if problem is None:
                try:
                    await self.inbox.put(gateway_id, EventKind.UPDATE, update_id, text, chat_id=chat_of(data[kind]))
                    return OK
                except RowRefused as refused:  # what the checks above did not foresee
                    problem = f"refused by the database: {refused.reason}"
            # It can never be stored: a 2xx stops Telegram resending it, the record keeps it.
            await inbox.reject(gateway_id, update_id, problem, body)
        except Exception as exc:  # InboxUnavailable, or the record could not be written
            return self._try_again("the inbox write", exc)
        return OK

    def _try_again(self, what: str, exc: Exception) -> Answer:
        """503, which Telegram retries; logged at most once every few seconds during an outage."""
        now = time.monotonic()
        self._outage_unlogged += 1
        if now - self._outage_logged_at >= OUTAGE_LOG_EVERY_SECONDS:
            log.warning("webhook answered 503 (%d times since the last line): %s failed: %s",
                        self._outage_unlogged, what, describe(exc))
            self._outage_logged_at, self._outage_unlogged = now, 0
        return TRY_AGAIN
