"""A fake Telegram Bot API served over real HTTP on loopback.

It speaks the methods Plugboard uses (getMe, setWebhook, deleteWebhook, sendMessage) the way
Telegram does: `POST /bot{token}/{method}` with form, JSON or multipart bodies, answers
`{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description": …}`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.server import LiveServer

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass
class FakeBot:
    token: str
    username: str
    bot_id: int
    webhook_url: str | None = None
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    sent_messages: list[dict[str, Any]] = field(default_factory=list)
    _message_ids: dict[int, itertools.count[int]] = field(default_factory=dict)

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.username,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


def _ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


def unreachable_url() -> str:
    """A loopback URL on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeTelegram:
    def __init__(self) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (bot username, method, params)
        self.delays: dict[str, float] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._bot_ids = itertools.count(7_000_000_001)
        app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])])
        self._server = LiveServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_bot(self, token: str, username: str, bot_id: int | None = None) -> FakeBot:
        bot = FakeBot(token=token, username=username, bot_id=bot_id or next(self._bot_ids))
        self.bots[token] = bot
        return bot

    def bot(self, token: str) -> FakeBot:
        return self.bots[token]

    def reset(self) -> None:
        self.bots.clear()
        self.calls.clear()
        self.delays.clear()
        self._failures.clear()

    def fail_next(self, method: str, status: int = 500, description: str = "Internal Server Error", retry_after: int | None = None) -> None:
        """Makes the next call of `method` fail as Telegram would (429 with retry_after for flood control)."""
        self._failures.setdefault(method, []).append(_Failure(status, description, retry_after))

    def methods_called(self) -> list[str]:
        return [method for _, method, _ in self.calls]

    async def _params(self, request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = await request.body()
            return json.loads(body) if body else {}
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            return {key: value for key, value in form.items() if isinstance(value, str)}
        return dict(request.query_params)

    async def _handle(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        params = await self._params(request)
        bot = self.bots.get(token)
        self.calls.append((bot.username if bot else "<unknown token>", method, params))
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        if bot is None:
            return _error(401, "Unauthorized")
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            description = failure.description
            if failure.retry_after is not None and failure.status == 429:
                description = f"Too Many Requests: retry after {failure.retry_after}"
            return _error(failure.status, description, failure.retry_after)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        return handler(bot, params)

    def _getMe(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        return _ok(bot.user)

    def _setWebhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        url = params.get("url")
        if not url:
            return _error(400, "Bad Request: bad webhook: URL must be non-empty")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.match(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        bot.webhook_url, bot.secret_token, bot.allowed_updates = str(url), secret, allowed
        return _ok(True, "Webhook was set")

    def _deleteWebhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        bot.webhook_url = bot.secret_token = None
        bot.allowed_updates = None
        return _ok(True, "Webhook was deleted")

    def _sendMessage(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if "chat_id" not in params:
            return _error(400, "Bad Request: chat_id is empty")
        text = str(params.get("text") or "")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        try:
            chat_id = int(params["chat_id"])
        except ValueError:
            return _error(400, "Bad Request: chat not found")
        message = {
            "message_id": bot.next_message_id(chat_id),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": bot.user,
            "text": text,
        }
        bot.sent_messages.append({**params, "chat_id": chat_id, "text": text, "message": message})
        return _ok(message)
