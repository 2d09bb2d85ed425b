"""POST /webhooks/telegram/{gateway_id}: authenticate, commit, then answer. Processing comes later."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiogram.types import Update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.gateways.inbox import InboxWriter
from app.gateways.models import EventKind
from app.gateways.secrets import GatewaySecrets

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
UPDATE_FIELDS = frozenset(Update.model_fields) - {"update_id"}


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
SHAPES = {"message": _is_message, "channel_post": _is_message, "callback_query": _is_callback}


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

    async def handle(self, request: Request) -> Response:
        gateway_id = request.path_params["gateway_id"]
        secret = await self.secrets.secret_of(gateway_id) if len(gateway_id) <= 64 else None
        given = request.headers.get(SECRET_HEADER, "")
        if secret is None or not hmac.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        try:
            text = body.decode("utf-8")
            data = json.loads(text)
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
        try:
            await self.inbox.put(
                gateway_id, EventKind.UPDATE, str(data["update_id"]), text, chat_id=chat_of(data[kind])
            )
        except Exception:
            return JSONResponse({"error": "try again"}, status_code=503)
        return Response(status_code=200)
