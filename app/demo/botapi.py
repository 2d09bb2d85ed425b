"""A loopback stand-in for the Telegram Bot API, for `python -m app demo`.

It knows one bot and answers the methods Plugboard calls (getMe, setWebhook, deleteWebhook,
getWebhookInfo, sendMessage, getChatMemberCount) the way Telegram does: `POST /bot{token}/{method}`, form or JSON parameters, and
`{"ok": true, "result": …}`. It keeps the webhook address and secret that Plugboard registers, so
the demo's traffic can be delivered the way Telegram delivers it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# What Telegram sends a bot that named no update types: everything but these.
NOT_SENT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
JSON_PARAMS = frozenset({"allowed_updates", "reply_markup", "entities", "link_preview_options", "reply_parameters"})


@dataclass
class DemoBot:
    token: str
    bot_id: int
    username: str
    first_name: str
    webhook_url: str | None = None
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    sent: int = 0
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000))

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def wants(self, update: dict[str, Any]) -> bool:
        """Whether Telegram would send this update to the bot, given the types it registered for."""
        kind = next((key for key in update if key != "update_id"), "")
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in NOT_SENT_BY_DEFAULT


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": status, "description": description}, status_code=status)


class BotApiStandIn:
    """A Starlette app (`.app`) standing in for api.telegram.org for one bot."""

    def __init__(
        self,
        bot: DemoBot,
        chat_titles: dict[int, tuple[str, str]],
        member_count: Callable[[int], int | None] = lambda chat_id: None,
    ) -> None:
        self.bot = bot
        self.chat_titles = chat_titles  # chat id -> (type, title), for the chats of sent messages
        self.member_count = member_count  # a chat's members now; None: the bot is in no such chat
        self.kicked_from: set[int] = set()  # chats the bot was removed from: getChatMemberCount is a 403
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.bot.token:
            return _error(401, "Unauthorized")
        params = await self._params(request)
        if params is None:
            return _error(400, "Bad Request: can't parse request parameters")
        method = request.path_params["method"].lower()
        if method == "getme":
            return _ok(self.bot.user)
        if method == "setwebhook":
            return self._set_webhook(params)
        if method == "deletewebhook":  # as with Telegram, the update types asked for stay
            self.bot.webhook_url = self.bot.secret_token = None
            return _ok(True)
        if method == "getupdates" and self.bot.webhook_url:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        if method == "sendmessage":
            return self._send_message(params)
        if method == "getwebhookinfo":  # a healthy webhook: everything delivered
            return self._webhook_info()
        if method == "getchatmembercount":
            return self._member_count(params)
        return _error(404, "Not Found")

    async def _params(self, request: Request) -> dict[str, Any] | None:
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                body = await request.json()
                return body if isinstance(body, dict) else None
            form = await request.form()
            raw: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)} or dict(request.query_params)
            return {k: json.loads(v) if k in JSON_PARAMS else v for k, v in raw.items()}
        except ValueError:
            return None

    def _set_webhook(self, params: dict[str, Any]) -> JSONResponse:
        url = str(params.get("url") or "")
        if url and not url.startswith(("http://127.0.0.1:", "https://")):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.bot.webhook_url = url or None
        self.bot.secret_token = params.get("secret_token") if url else None
        if url and params.get("allowed_updates") is not None:  # left out: the previous setting stays
            self.bot.allowed_updates = list(params["allowed_updates"])
        return _ok(True)

    def _webhook_info(self) -> JSONResponse:
        info: dict[str, Any] = {
            "url": self.bot.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.bot.webhook_url and self.bot.allowed_updates is not None:
            info["allowed_updates"] = self.bot.allowed_updates
        return _ok(info)

    def _member_count(self, params: dict[str, Any]) -> JSONResponse:
        try:
            chat_id = int(params.get("chat_id") or 0)
        except (TypeError, ValueError):
            chat_id = 0
        if not chat_id:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.kicked_from:
            kind, _ = self.chat_titles.get(chat_id, ("supergroup", ""))
            return _error(403, f"Forbidden: bot was kicked from the {kind} chat")
        count = self.member_count(chat_id)
        return _error(400, "Bad Request: chat not found") if count is None else _ok(count)

    def _send_message(self, params: dict[str, Any]) -> JSONResponse:
        text = str(params.get("text") or "")
        try:
            chat_id = int(params.get("chat_id") or 0)
        except ValueError:
            chat_id = 0
        if not chat_id:
            return _error(400, "Bad Request: chat not found")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        kind, title = self.chat_titles.get(chat_id, ("supergroup", f"Chat {chat_id}"))
        self.bot.sent += 1
        return _ok(
            {
                "message_id": next(self.bot._message_ids),
                "from": self.bot.user,
                "chat": {"id": chat_id, "type": kind, "title": title},
                "date": int(time.time()),
                "text": text,
            }
        )
