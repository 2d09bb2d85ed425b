"""A fake Telegram Bot API served over real HTTP on loopback.

It speaks the methods Plugboard uses (getMe, setWebhook, deleteWebhook, sendMessage) the way
Telegram does: `POST /bot{token}/{method}` with form, JSON or multipart bodies (method names are
case-insensitive), answering `{"ok": true, "result": …}` or
`{"ok": false, "error_code": …, "description": …}` with the same HTTP status as the error code.

    async with FakeTelegram() as telegram:
        bot = telegram.add_bot("123456:ABC-DEF…", "demo_bot")
        ...  # point TELEGRAM_API_URL at telegram.url
        assert bot.webhook_url == ...

Unknown tokens get 401 Unauthorized, unknown methods 404 Not Found. setWebhook refuses a URL that
is not HTTPS, or names a port other than 443, 80, 88 or 8443, with Telegram's 400 and words. `fail_next` and `delay`
make a method fail once or answer slowly; `flood` answers the next sends with 429 and `retry_after`.

`enforce_limits()` makes the fake hold bots to Telegram's send limits as its bot FAQ states them
(about 1 message a second per chat, 20 a minute per group, about 30 a second per bot): a
sendMessage beyond them gets 429 "Too Many Requests: retry after N" with `parameters.retry_after`.
Every request is kept in `arrivals` with its arrival time (time.monotonic) and the status it got.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.server import LiveServer

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Telegram delivers webhooks over HTTPS to these ports only, and refuses anything else with these words.
WEBHOOK_PORTS = (443, 80, 88, 8443)
HTTPS_REQUIRED = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
PORT_REFUSED = "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
MAX_TEXT_LENGTH = 4096

# Parameters that carry lists or objects: form and multipart bodies send them as JSON strings.
JSON_PARAMS = frozenset(
    {"allowed_updates", "reply_markup", "entities", "caption_entities", "link_preview_options", "reply_parameters"}
)

STATUS_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class FakeBot:
    """A registered bot token and what Telegram knows about it."""

    token: str
    username: str
    bot_id: int
    webhook_url: str | None = None
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    sent_messages: list[dict[str, Any]] = field(default_factory=list)  # params as received + "message"
    _message_ids: dict[int, itertools.count[int]] = field(default_factory=dict, repr=False)

    @property
    def user(self) -> dict[str, Any]:
        """The bot's User object, as getMe returns it and as `from` of the messages it sends."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.username,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))


class Arrival(NamedTuple):
    """One request as it arrived: when (time.monotonic()), for which bot (username, or the token's
    numeric id when unknown), which method and chat, and the HTTP status it was answered with."""

    at: float
    bot: str
    method: str
    chat_id: int | str | None
    status: int
    params: dict[str, Any]


@dataclass(frozen=True)
class SendLimits:
    """The limits `enforce_limits` holds sends to. `slack` forgives a message that arrives a little
    early (network jitter between a sender's clock and ours), as Telegram's "about" does."""

    chat_seconds: float = 1.0
    group_per_minute: int = 20
    bot_per_second: int = 30
    slack: float = 0.2


class Call(NamedTuple):
    """One request: the bot's username (or only the token's numeric id when the token is unknown)."""

    bot: str
    method: str
    params: dict[str, Any]


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


def _token_id(token: str) -> str:
    """The public part of a token (the bot id before the colon); never the secret part."""
    bot_id = token.partition(":")[0]
    return bot_id if bot_id.isdigit() else "<malformed token>"


def webhook_url_refusal(url: str) -> str | None:
    """Telegram's description when it refuses `url` as a webhook: not HTTPS, or a port it does not serve."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        return "Bad Request: bad webhook: Failed to parse the URL"
    if parts.scheme.lower() != "https":
        return HTTPS_REQUIRED
    if port not in WEBHOOK_PORTS:
        return PORT_REFUSED
    return None


def unreachable_url() -> str:
    """A loopback URL on which nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeTelegram:
    def __init__(self) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.calls: list[Call] = []
        self.delays: dict[str, float] = {}  # lower-cased method name -> seconds
        self._failures: dict[str, list[_Failure]] = {}
        self.arrivals: list[Arrival] = []
        self.limits: SendLimits | None = None
        self._accepted: dict[tuple[str, str], list[float]] = {}  # (token, chat or "*") -> accepted sends' times
        self._bot_ids = itertools.count(7_000_000_001)
        self._methods: dict[str, Callable[[FakeBot, dict[str, Any]], JSONResponse]] = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "sendmessage": self._send_message,
        }
        app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])])
        self._server = LiveServer(app)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base to give aiogram: `TelegramAPIServer.from_base(url)` calls `{url}/bot{token}/{method}`."""
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

    # -- arranging ---------------------------------------------------------------------------

    def add_bot(self, token: str, username: str, bot_id: int | None = None) -> FakeBot:
        """Makes `token` valid. The bot id defaults to the token's numeric prefix, as with real tokens."""
        if bot_id is None:
            prefix = token.partition(":")[0]
            bot_id = int(prefix) if prefix.isdigit() and int(prefix) > 0 else next(self._bot_ids)
        bot = FakeBot(token=token, username=username, bot_id=bot_id)
        self.bots[token] = bot
        return bot

    def bot(self, token: str) -> FakeBot:
        return self.bots[token]

    def fail_next(
        self, method: str, status: int | None = None, description: str | None = None, retry_after: int | None = None
    ) -> None:
        """Makes the next call of `method` fail as Telegram would; failures queue up.

        With `retry_after` it is flood control: 429 "Too Many Requests: retry after N" with
        `parameters.retry_after`, which aiogram raises as TelegramRetryAfter. Otherwise 500.
        """
        if status is None:
            status = 429 if retry_after is not None else 500
        if description is None:
            description = STATUS_DESCRIPTIONS.get(status, "Error")
            if status == 429 and retry_after is not None:
                description = f"Too Many Requests: retry after {retry_after}"
        self._failures.setdefault(method.lower(), []).append(_Failure(status, description, retry_after))

    def flood(self, retry_after: int = 1, times: int = 1, method: str = "sendMessage") -> None:
        """Answers the next `times` calls of `method` with 429 and `retry_after` (flood control)."""
        for _ in range(times):
            self.fail_next(method, retry_after=retry_after)

    def enforce_limits(self, limits: SendLimits | None = None) -> None:
        """Answers sendMessage calls beyond Telegram's send limits with 429 (see the module's doc)."""
        self.limits = limits or SendLimits()

    def delay(self, method: str, seconds: float) -> None:
        """Makes every later call of `method` wait `seconds` before answering (a slow Bot API)."""
        self.delays[method.lower()] = seconds

    def reset(self) -> None:
        """Forgets bots, calls, failures and delays (the server keeps running)."""
        self.bots.clear()
        self.calls.clear()
        self.delays.clear()
        self._failures.clear()
        self.arrivals.clear()
        self.limits = None
        self._accepted.clear()

    # -- asserting ---------------------------------------------------------------------------

    def methods_called(self) -> list[str]:
        return [call.method for call in self.calls]

    def sends(self, chat_id: int | str | None = None) -> list[Arrival]:
        """The sendMessage requests that arrived (to `chat_id` only, when given), in order."""
        return [
            a for a in self.arrivals
            if a.method.lower() == "sendmessage" and (chat_id is None or str(a.chat_id) == str(chat_id))
        ]

    # -- serving -----------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any] | None:
        """The call's parameters from a JSON, form or multipart body, or the query; None if unparsable."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = await request.body()
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                return None
            return params if isinstance(params, dict) else None
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            raw = {key: value for key, value in form.items() if isinstance(value, str)}  # files are dropped
        else:
            raw = dict(request.query_params)
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in JSON_PARAMS:
                try:
                    params[key] = json.loads(value)
                    continue
                except ValueError:
                    return None
            params[key] = value
        return params

    async def _handle(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        params = await self._params(request)
        at = time.monotonic()
        bot = self.bots.get(token)
        who = bot.username if bot else _token_id(token)
        self.calls.append(Call(who, method, params or {}))
        response = await self._answer(token, method, bot, params, at)
        chat_id = (params or {}).get("chat_id")
        self.arrivals.append(Arrival(at, who, method, chat_id, response.status_code, params or {}))
        return response

    async def _answer(
        self, token: str, method: str, bot: FakeBot | None, params: dict[str, Any] | None, at: float
    ) -> JSONResponse:
        name = method.lower()
        if name in self.delays:
            await asyncio.sleep(self.delays[name])
        if bot is None:
            return _error(401, "Unauthorized")
        if failures := self._failures.get(name):
            failure = failures.pop(0)
            return _error(failure.status, failure.description, failure.retry_after)
        handler = self._methods.get(name)
        if handler is None:
            return _error(404, "Not Found")
        if params is None:
            return _error(400, "Bad Request: can't parse request parameters")
        if name == "sendmessage" and self.limits is not None and params.get("chat_id"):
            if (wait := self._over_limits(token, str(params["chat_id"]), at)) is not None:
                retry_after = max(1, math.ceil(wait))
                return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        response = handler(bot, params)
        if name == "sendmessage" and response.status_code == 200:
            chat = str(params["chat_id"])
            for key in ((token, chat), (token, "*")):
                self._accepted.setdefault(key, []).append(at)
        return response

    def _over_limits(self, token: str, chat: str, at: float) -> float | None:
        """Seconds until a send to `chat` would be within the limits; None when it is now."""
        assert self.limits is not None
        limits, waits = self.limits, []
        chat_times = self._accepted.get((token, chat), [])
        if chat_times and at - chat_times[-1] < limits.chat_seconds - limits.slack:
            waits.append(chat_times[-1] + limits.chat_seconds - at)
        if chat.startswith(("-", "@")):
            window = [t for t in chat_times if at - t < 60 - limits.slack]
            if len(window) >= limits.group_per_minute:
                waits.append(window[-limits.group_per_minute] + 60 - at)
        bot_times = [t for t in self._accepted.get((token, "*"), []) if at - t < 1 - limits.slack]
        if len(bot_times) >= limits.bot_per_second:
            waits.append(bot_times[-limits.bot_per_second] + 1 - at)
        return max(waits) if waits else None

    def _get_me(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        return _ok(bot.user)

    def _set_webhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if "url" not in params:
            return _error(400, 'Bad Request: parameter "url" is required')
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.match(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        if not params["url"]:  # as with Telegram, an empty URL removes the webhook
            return self._delete_webhook(bot, params)
        if refusal := webhook_url_refusal(str(params["url"])):
            return _error(400, refusal)
        allowed = params.get("allowed_updates")
        bot.webhook_url, bot.secret_token = str(params["url"]), secret
        bot.allowed_updates = list(allowed) if allowed is not None else None
        return _ok(True, "Webhook was set")

    def _delete_webhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if bot.webhook_url is None:
            return _ok(True, "Webhook is already deleted")
        bot.webhook_url = bot.secret_token = None
        bot.allowed_updates = None
        return _ok(True, "Webhook was deleted")

    def _send_message(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if not params.get("chat_id"):
            return _error(400, "Bad Request: chat_id is empty")
        text = str(params.get("text") or "")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            return _error(400, "Bad Request: message is too long")
        try:
            chat_id = int(params["chat_id"])
        except ValueError:
            return _error(400, "Bad Request: chat not found")
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
        if chat_id < 0:
            chat = {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        message = {
            "message_id": bot.next_message_id(chat_id),
            "from": bot.user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        bot.sent_messages.append({**params, "chat_id": chat_id, "text": text, "message": message})
        return _ok(message)
