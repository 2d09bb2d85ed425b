"""POST /webhooks/telegram/{gateway_id}: authenticate, commit, then answer. Processing comes later."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import Update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db_errors import describe
from app.gateways import inbox, storable
from app.gateways.inbox import InboxWriter, RowRefused
from app.gateways.models import EventKind
from app.gateways.secrets import GatewaySecrets
from app.inputs import is_id, json_depth_exceeds

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
UPDATE_FIELDS = frozenset(Update.model_fields) - {"update_id"}
# Telegram nests an update a handful of levels deep; json.loads recurses once per level.
MAX_JSON_DEPTH = 64
OUTAGE_LOG_EVERY_SECONDS = 5.0


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def update_type(data: dict[str, Any]) -> str | None:
    """The kind of update, read from its keys (an update carries exactly one besides update_id)."""
    for key in data:
        if key != "update_id" and key in UPDATE_FIELDS:
            return key
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_message(value: object) -> bool:
    return (
        isinstance(value, dict)
        and _is_int(value.get("message_id"))
        and _is_int(value.get("date"))
        and isinstance(value.get("chat"), dict)
        and _is_int(value["chat"].get("id"))
    )


def _is_callback(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("from"), dict)
        and _is_int(value["from"].get("id"))
    )


# What makes a body an update of each kind we take in. The dispatcher parses it fully with
# aiogram later; checking the shape here keeps the acknowledgement cheap.
def _is_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("status"), str)
        and isinstance(value.get("user"), dict)
        and _is_int(value["user"].get("id"))
    )


def _is_chat_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("chat"), dict)
        and _is_int(value["chat"].get("id"))
        and _is_int(value.get("date"))
        and _is_member(value.get("old_chat_member"))
        and _is_member(value.get("new_chat_member"))
    )


SHAPES = {
    "message": _is_message,
    "channel_post": _is_message,
    "callback_query": _is_callback,
    "chat_member": _is_chat_member,
}


def chat_of(event: dict[str, Any]) -> int | None:
    """The chat whose events must run in order: a message's chat, a callback's message's chat."""
    chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
    if _is_int(chat.get("id")):
        return chat["id"]
    sender = event.get("from") or {}
    return sender.get("id") if _is_int(sender.get("id")) else None


@dataclass
class TelegramWebhook:
    inbox: InboxWriter
    secrets: GatewaySecrets
    handled_update_types: frozenset[str]
    max_body_bytes: int
    _outage_logged_at: float = field(default=float("-inf"), init=False)
    _outage_unlogged: int = field(default=0, init=False)

    async def handle(self, request: Request) -> Response:
        gateway_id = request.path_params["gateway_id"]
        if not is_id(gateway_id):  # names none of our gateways: refused without a query
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            secret = await self.secrets.secret_of(gateway_id)
        except Exception as exc:
            return self._try_again("the gateway lookup", exc)
        given = request.headers.get(SECRET_HEADER, "")
        if secret is None or not hmac.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        try:
            if json_depth_exceeds(body, MAX_JSON_DEPTH):
                raise ValueError("nested too deep")
            text = body.decode("utf-8")
            data, suspect = storable.parse(text)
            if not isinstance(data, dict) or not _is_int(data.get("update_id")):
                raise ValueError("not an update")
            kind = update_type(data)
            if kind not in self.handled_update_types:
                # Acknowledged unread: a kind no plugin handles, or one newer than our aiogram.
                return Response(status_code=200)
            shape = SHAPES.get(kind)
            if shape is not None and not shape(data[kind]):
                raise ValueError(f"not a {kind}")
        except ValueError:
            return JSONResponse({"error": "the body is not a Telegram update"}, status_code=400)
        update_id = str(data["update_id"])
        problem = storable.problem(data, MAX_JSON_DEPTH) if suspect else None
        try:
            if problem is None:
                try:
                    await self.inbox.put(gateway_id, EventKind.UPDATE, update_id, text, chat_id=chat_of(data[kind]))
                    return Response(status_code=200)
                except RowRefused as refused:  # what the checks above did not foresee
                    problem = f"refused by the database: {refused.reason}"
            # It can never be stored: a 2xx stops Telegram resending it, the record keeps it.
            await inbox.reject(gateway_id, update_id, problem, body)
        except Exception as exc:  # InboxUnavailable, or the record could not be written
            return self._try_again("the inbox write", exc)
        return Response(status_code=200)

    def _try_again(self, what: str, exc: Exception) -> Response:
        """503, which Telegram retries; logged at most once every few seconds during an outage."""
        now = time.monotonic()
        self._outage_unlogged += 1
        if now - self._outage_logged_at >= OUTAGE_LOG_EVERY_SECONDS:
            log.warning("webhook answered 503 (%d times since the last line): %s failed: %s",
                        self._outage_unlogged, what, describe(exc))
            self._outage_logged_at, self._outage_unlogged = now, 0
        return JSONResponse({"error": "database unavailable, try again"}, status_code=503, headers={"Retry-After": "1"})
