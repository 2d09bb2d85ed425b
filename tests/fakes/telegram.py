"""A fake Telegram Bot API served over real HTTP on loopback, as strict as Telegram where it matters.

It speaks the methods Plugboard uses (getMe, setWebhook, deleteWebhook, getWebhookInfo, getUpdates,
sendMessage, getChatMemberCount) the way Telegram does: `POST /bot{token}/{method}` with form, JSON or multipart bodies
(method names are case-insensitive), answering `{"ok": true, "result": …}` or
`{"ok": false, "error_code": …, "description": …}` with the same HTTP status as the error code, in
Telegram's own words (taken from tdlib/telegram-bot-api, the Bot API server).

    async with FakeTelegram() as telegram:
        bot = telegram.add_bot("123456:ABC-DEF…", "demo_bot")
        ...  # point TELEGRAM_API_URL at telegram.url
        assert bot.webhook_url == ...

Member counts: `set_members(token, chat_id, count)` puts the bot in a chat with that many members
(getChatMemberCount answers it); a chat the bot was never put in is 400 "Bad Request: chat not found",
and `kick_bot(token, chat_id)` removes the bot: 403 "Forbidden: bot was kicked from the supergroup
chat" (or the group or channel chat, by the chat's type), until `set_members` puts it back.

Unknown and revoked tokens get 401 Unauthorized, unknown methods 404 Not Found. setWebhook refuses a URL
that is not HTTPS, or names a port other than 443, 80, 88 or 8443, with Telegram's 400 and words.
`fail_next` and `delay` make a method fail once or answer slowly; `flood` answers the next sends with
429 and `retry_after` (every 429 carries `parameters.retry_after`).

Updates. A test makes Telegram send an update with `await telegram.deliver(token, update)`; it goes
through what Telegram does with one:
- the bot's registration filters it: the `allowed_updates` of the last setWebhook or getUpdates that
  gave some (a call without them keeps the previous setting; an empty list, or none ever, is
  Telegram's default: every type but chat_member, message_reaction and message_reaction_count). A
  filtered update is dropped at once, as Telegram drops it when it is created (a later registration
  does not re-filter updates already queued).
- with a webhook set, the fake POSTs it as JSON to the webhook URL, with
  `X-Telegram-Bot-Api-Secret-Token` when a secret was set. Webhook URLs are public HTTPS URLs, so a
  test maps them to its loopback server with `route_webhooks(public_base, to)`; a URL no route covers
  is a host that does not resolve (nothing leaves the machine). Anything but a 2xx answer keeps the
  update pending and records getWebhookInfo's `last_error_date` and `last_error_message`;
  `redeliver(token)` retries the pending updates in order. The fake sends only within `deliver` and
  `redeliver`, never on its own.
- without a webhook it waits for getUpdates (and wakes a long poll).

So strict delivery is `route_webhooks` + `deliver`. A test that posts straight to the app's webhook
endpoint bypasses the fake, and with it the filtering and the secret: that is the explicit lenient
path, for tests about the endpoint itself.

getUpdates follows Telegram: 409 while a webhook is set; `offset` confirms (forgets) the updates
before it, a negative one keeps only the last -offset; a long poll (`timeout`) waits for an update,
and a second long poll for the same bot ends the first with 409. `revoke(token)` and
`replace_token(old, new)` model a token revoked in @BotFather.

`enforce_limits()` makes the fake hold bots to Telegram's send limits as its bot FAQ states them
(about 1 message a second per chat, 20 a minute per group, about 30 a second per bot): a
sendMessage beyond them gets 429 "Too Many Requests: retry after N" with `parameters.retry_after`.
Every request is kept in `arrivals` with its arrival time (time.monotonic) and the status it got.

Not modelled: Telegram's setWebhook checking that it can reach the URL, its 429 for a second
setWebhook within a second, its 3 s delay of repeated 409s, and updates expiring after 24 hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import math
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.server import LiveServer

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{0,256}$")
# Telegram delivers webhooks over HTTPS to these ports only, and refuses anything else with these words.
WEBHOOK_PORTS = (443, 80, 88, 8443)
HTTPS_REQUIRED = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
PORT_REFUSED = "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
MAX_TEXT_LENGTH = 4096

WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
TERMINATED_BY_GET_UPDATES = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
TERMINATED_BY_SET_WEBHOOK = "Conflict: terminated by setWebhook request"
UNRESOLVED_HOST = "Failed to resolve host: Name or service not known"

# Update types in the Bot API server's order (which getWebhookInfo's allowed_updates follows).
UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "message_reaction",
    "message_reaction_count",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "purchased_paid_media",
    "managed_bot",
    "guest_message",
)
# What a bot gets when its registration names no types.
DEFAULT_ALLOWED_UPDATES = frozenset(UPDATE_TYPES) - {"chat_member", "message_reaction", "message_reaction_count"}
LONG_POLL_MAX_TIMEOUT = 50
DEFAULT_MAX_CONNECTIONS = 40

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

DeliveryStatus = Literal["delivered", "filtered", "pending", "failed"]


@dataclass(frozen=True)
class Delivery:
    """What became of one update Telegram tried to send: `delivered` (the webhook answered 2xx),
    `filtered` (the registration left its type out: dropped), `pending` (waiting for getUpdates, for
    an earlier pending update, or for a revoked token's bot) or `failed` (the webhook attempt failed;
    still pending). `error` is Telegram's last_error_message for a failed attempt."""

    update_id: int
    status: DeliveryStatus
    http_status: int | None = None
    error: str | None = None


@dataclass
class _Poll:
    """A getUpdates request waiting for updates; `ended_by` is the error another request ended it with."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended_by: tuple[int, str] | None = None


@dataclass
class FakeBot:
    """A registered bot token and what Telegram knows about it."""

    token: str
    username: str
    bot_id: int
    webhook_url: str | None = None
    secret_token: str | None = None
    allowed_updates: list[str] | None = None  # as the last registration that gave them asked
    sent_messages: list[dict[str, Any]] = field(default_factory=list)  # params as received + "message"
    revoked: bool = False
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    ip_address: str = "127.0.0.1"
    pending: list[dict[str, Any]] = field(default_factory=list)  # updates not yet delivered or confirmed
    confirmed: list[int] = field(default_factory=list)  # update ids confirmed by getUpdates' offset
    delivered: list[int] = field(default_factory=list)  # update ids a webhook answered 2xx for
    dropped: list[int] = field(default_factory=list)  # update ids forgotten unseen (drop_pending_updates, offset < 0)
    deliveries: list[Delivery] = field(default_factory=list)  # every deliver/redeliver outcome, in order
    last_error_date: int | None = None
    last_error_message: str | None = None
    backlog: int = 0  # pending updates arranged by fail_webhook (counted, never sent)
    member_counts: dict[int, int] = field(default_factory=dict)  # chats the bot is in -> members
    chat_kinds: dict[int, str] = field(default_factory=dict)  # chat -> "supergroup", "group" or "channel"
    kicked_from: set[int] = field(default_factory=set)  # chats the bot was removed from
    polling: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set while a long poll waits
    _poll: _Poll | None = field(default=None, repr=False)
    _sending: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _last_update_id: int = field(default=0, repr=False)
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

    @property
    def pending_update_count(self) -> int:
        return len(self.pending) + self.backlog

    @property
    def allowed_types(self) -> frozenset[str]:
        """The update types the registration lets through (Telegram ignores names it does not know)."""
        named = frozenset(str(name).lower() for name in self.allowed_updates or ()) & set(UPDATE_TYPES)
        return named or DEFAULT_ALLOWED_UPDATES

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
    if status == 429 and retry_after is None:
        retry_after = 1  # Telegram's flood control always says how long to wait
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


def _token_id(token: str) -> str:
    """The public part of a token (the bot id before the colon); never the secret part."""
    bot_id = token.partition(":")[0]
    return bot_id if bot_id.isdigit() else "<malformed token>"


def _integer(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter as the Bot API reads one: absent is the default, garbage is 0, clamped."""
    raw = params.get(name)
    if raw is None or raw == "":
        value = default
    else:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = 0
    return min(max(value, low), high)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in {"true", "1"}


def update_type(update: dict[str, Any]) -> str:
    """An update's type: its one key besides update_id."""
    kinds = [key for key in update if key != "update_id"]
    if len(kinds) != 1 or kinds[0] not in UPDATE_TYPES:
        raise ValueError(f"an update has update_id and one of Telegram's update types, not {kinds}")
    return kinds[0]


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


Handler = Callable[[FakeBot, dict[str, Any]], JSONResponse | Awaitable[JSONResponse]]


class FakeTelegram:
    def __init__(self, webhook_timeout: float = 30.0) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.calls: list[Call] = []
        self.delays: dict[str, float] = {}  # lower-cased method name -> seconds
        self._failures: dict[str, list[_Failure]] = {}
        self.arrivals: list[Arrival] = []
        self._generation = 0  # bumped by reset()
        self.limits: SendLimits | None = None
        self.webhook_timeout = webhook_timeout  # how long a webhook POST may take, each of connect and read
        self._routes: list[tuple[str, str]] = []  # (public base, loopback base)
        self._accepted: dict[tuple[str, str], list[float]] = {}  # (token, chat or "*") -> accepted sends' times
        self._bot_ids = itertools.count(7_000_000_001)
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "getchatmembercount": self._get_chat_member_count,
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
        for bot in self.bots.values():
            self._end_poll(bot)  # a waiting long poll would hold the server's shutdown
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

        With `retry_after` (or status 429, then retry_after 1) it is flood control: 429 "Too Many
        Requests: retry after N" with `parameters.retry_after`, which aiogram raises as
        TelegramRetryAfter. Otherwise 500.
        """
        if status is None:
            status = 429 if retry_after is not None else 500
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = STATUS_DESCRIPTIONS.get(status, "Error")
            if status == 429:
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

    def route_webhooks(self, public_base: str, to: str) -> None:
        """Delivers to webhook URLs that start with `public_base` at `to` + the rest of the URL instead
        (e.g. https://plugboard.example -> http://127.0.0.1:PORT). The longest matching base wins."""
        self._routes.append((public_base, to))

    def revoke(self, token: str) -> None:
        """Revokes `token`: every method answers 401 Unauthorized and nothing is delivered any more
        (updates still queue up for the bot, as Telegram keeps them). `bot(token)` still finds it."""
        bot = self.bots[token]
        bot.revoked = True
        self._end_poll(bot, (401, "Unauthorized"))

    def replace_token(self, old: str, new: str) -> FakeBot:
        """/revoke in @BotFather: the same bot (id, username, webhook, pending updates) answers to
        `new` only; `old` is unknown (401)."""
        bot = self.bots.pop(old)
        self._end_poll(bot, (401, "Unauthorized"))
        bot.token, bot.revoked = new, False
        self.bots[new] = bot
        return bot

    def set_members(self, token: str, chat_id: int, count: int, kind: str = "supergroup") -> None:
        """Puts the bot in the chat (back in it, if it was kicked), which has `count` members."""
        bot = self.bots[token]
        bot.member_counts[chat_id], bot.chat_kinds[chat_id] = count, kind
        bot.kicked_from.discard(chat_id)

    def kick_bot(self, token: str, chat_id: int) -> None:
        """Removes the bot from the chat: getChatMemberCount answers 403 as Telegram does."""
        bot = self.bots[token]
        bot.kicked_from.add(chat_id)
        bot.member_counts.pop(chat_id, None)

    def fail_webhook(self, token: str, message: str = "Connection refused", pending: int = 1) -> None:
        """Arranges "Telegram cannot reach the webhook" at once: last_error_date now, `message` as
        last_error_message, and `pending` more updates counted as pending (never sent; a redeliver that
        empties the queue counts them delivered)."""
        bot = self.bots[token]
        bot.last_error_date, bot.last_error_message = int(time.time()), message
        bot.backlog += pending

    def reset(self) -> None:
        """Forgets bots, calls, failures, delays and webhook routes (the server keeps running)."""
        for bot in self.bots.values():
            self._end_poll(bot)
        self.bots.clear()
        self.calls.clear()
        self.delays.clear()
        self._failures.clear()
        self.arrivals.clear()
        self.limits = None
        self._accepted.clear()
        self._routes.clear()
        self._generation += 1  # a call still being answered (delayed) belongs to the test before

    # -- updates -----------------------------------------------------------------------------

    async def deliver(self, token: str, update: dict[str, Any]) -> Delivery:
        """Telegram has an update for the bot: filtered by its registration, then POSTed to its webhook
        (after any updates still pending before it) or queued for getUpdates. Without `update_id` the
        update gets the bot's next one."""
        bot = self.bots[token]
        kind = update_type(update)
        update = dict(update)
        update_id = update.setdefault("update_id", bot._last_update_id + 1)
        bot._last_update_id = max(bot._last_update_id, update_id)
        if kind not in bot.allowed_types:
            return self._record(bot, Delivery(update_id, "filtered"))
        bot.pending.append(update)
        if bot.revoked:
            return self._record(bot, Delivery(update_id, "pending", error="Unauthorized"))
        if bot.webhook_url is None:
            if bot._poll is not None:
                bot._poll.wake.set()
            return self._record(bot, Delivery(update_id, "pending"))
        await self._send_pending(bot)
        mine = [d for d in bot.deliveries if d.update_id == update_id]
        if mine:
            return mine[-1]
        return self._record(bot, Delivery(update_id, "pending", error=bot.last_error_message))

    async def redeliver(self, token: str) -> list[Delivery]:
        """Retries the bot's pending updates at its webhook, in order, until one fails (as Telegram's
        resending does); the attempts' outcomes. Nothing for a bot without a webhook or revoked."""
        return await self._send_pending(self.bots[token])

    def confirmed(self, token: str) -> list[int]:
        """The update ids getUpdates' offset confirmed, in order."""
        return list(self.bots[token].confirmed)

    def polling(self, token: str) -> asyncio.Event:
        """Set while a getUpdates long poll for the bot is waiting for updates."""
        return self.bots[token].polling

    def _record(self, bot: FakeBot, delivery: Delivery) -> Delivery:
        bot.deliveries.append(delivery)
        return delivery

    async def _send_pending(self, bot: FakeBot) -> list[Delivery]:
        attempts: list[Delivery] = []
        if not bot.pending or bot.webhook_url is None or bot.revoked:
            return attempts
        async with bot._sending, httpx.AsyncClient(timeout=self.webhook_timeout, trust_env=False) as client:
            while bot.pending and bot.webhook_url is not None and not bot.revoked:
                update = bot.pending[0]
                delivery = self._record(bot, await self._post(client, bot, update))
                attempts.append(delivery)
                if delivery.status != "delivered":
                    break
                with contextlib.suppress(ValueError):  # unless dropped meanwhile
                    bot.pending.remove(update)
                bot.delivered.append(delivery.update_id)
            if attempts and attempts[-1].status == "delivered" and not bot.pending:
                bot.backlog = 0
        return attempts

    def _route(self, url: str) -> str | None:
        matches = [(base, to) for base, to in self._routes if url.startswith(base)]
        if not matches:
            return None
        base, to = max(matches, key=lambda route: len(route[0]))
        return to + url[len(base) :]

    async def _post(self, client: httpx.AsyncClient, bot: FakeBot, update: dict[str, Any]) -> Delivery:
        assert bot.webhook_url is not None
        update_id = update["update_id"]
        target = self._route(bot.webhook_url)
        status: int | None = None
        if target is None:
            error = UNRESOLVED_HOST
        else:
            headers = {"Content-Type": "application/json"}
            if bot.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = bot.secret_token
            try:
                response = await client.post(target, content=json.dumps(update), headers=headers)
            except httpx.ConnectTimeout:
                error = "Connection timed out"
            except httpx.ConnectError:
                error = "Connection refused"
            except httpx.TimeoutException:
                error = "Read timeout expired"
            except httpx.HTTPError:
                error = "Webhook connection closed"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Delivery(update_id, "delivered", status)
                reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
                error = f"Wrong response from the webhook: {status} {reason}".rstrip()
        bot.last_error_date, bot.last_error_message = int(time.time()), error
        return Delivery(update_id, "failed", status, error)

    def _end_poll(self, bot: FakeBot, error: tuple[int, str] | None = None) -> None:
        """Ends the bot's waiting long poll: answered with `error`, or with what is pending."""
        poll, bot._poll = bot._poll, None
        if poll is not None:
            poll.ended_by = error
            poll.wake.set()
            bot.polling.clear()

    def _drop_pending(self, bot: FakeBot) -> None:
        bot.dropped.extend(update["update_id"] for update in bot.pending)
        bot.pending.clear()
        bot.backlog = 0

    # -- asserting ---------------------------------------------------------------------------

    def methods_called(self) -> list[str]:
        return [call.method for call in self.calls]

    def sends(self, chat_id: int | str | None = None) -> list[Arrival]:
        """The sendMessage requests that arrived (to `chat_id` only, when given), in order."""
        return [
            a
            for a in self.arrivals
            if a.method.lower() == "sendmessage" and (chat_id is None or str(a.chat_id) == str(chat_id))
        ]

    # -- serving -----------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any] | None:
        """The call's parameters from a JSON, form or multipart body, or the query; None if unparsable."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = await request.body()
            try:
                parsed = json.loads(body) if body else {}
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None
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
        generation = self._generation
        response = await self._answer(token, method, bot, params, at)
        chat_id = (params or {}).get("chat_id")
        if generation == self._generation:
            self.arrivals.append(Arrival(at, who, method, chat_id, response.status_code, params or {}))
        return response

    async def _answer(
        self, token: str, method: str, bot: FakeBot | None, params: dict[str, Any] | None, at: float
    ) -> JSONResponse:
        name = method.lower()
        if name in self.delays:
            await asyncio.sleep(self.delays[name])
        if bot is None or bot.revoked or self.bots.get(token) is not bot:  # revoked, or replaced meanwhile
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
        if inspect.isawaitable(response):
            response = await response
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

    def _register(self, bot: FakeBot, params: dict[str, Any]) -> None:
        """Takes a registration's allowed_updates; without them (or with no list) the previous stay."""
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = list(allowed)

    def _set_webhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if "url" not in params:
            return _error(400, 'Bad Request: parameter "url" is required')
        if not params["url"]:  # as with Telegram, an empty URL removes the webhook
            return self._delete_webhook(bot, params)
        url, secret = str(params["url"]), str(params.get("secret_token") or "")
        if len(secret) > 256:
            return _error(400, "Bad Request: secret token is too long")
        if not SECRET_TOKEN.match(secret):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        if refusal := webhook_url_refusal(url):
            return _error(400, refusal)
        max_connections = _integer(params, "max_connections", DEFAULT_MAX_CONNECTIONS, 1, 100)
        drop = _flag(params.get("drop_pending_updates"))
        self._register(bot, params)
        unchanged = (url, secret or None, max_connections) == (bot.webhook_url, bot.secret_token, bot.max_connections)
        if unchanged and not drop:
            return _ok(True, "Webhook is already set")
        if drop:
            self._drop_pending(bot)
        bot.webhook_url, bot.secret_token, bot.max_connections = url, secret or None, max_connections
        bot.ip_address = str(params.get("ip_address") or "127.0.0.1")
        bot.last_error_date = bot.last_error_message = None  # a new webhook starts without errors
        self._end_poll(bot, (409, TERMINATED_BY_SET_WEBHOOK))
        return _ok(True, "Webhook was set")

    def _delete_webhook(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        """Removes the webhook; allowed_updates stay (Telegram keeps them for getUpdates and the next webhook)."""
        if _flag(params.get("drop_pending_updates")):
            self._drop_pending(bot)
        if bot.webhook_url is None:
            return _ok(True, "Webhook is already deleted")
        bot.webhook_url = bot.secret_token = None
        bot.max_connections = DEFAULT_MAX_CONNECTIONS
        bot.last_error_date = bot.last_error_message = None
        return _ok(True, "Webhook was deleted")

    def _get_webhook_info(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        info: dict[str, Any] = {
            "url": bot.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": bot.pending_update_count,
        }
        if bot.last_error_date is not None:
            info["last_error_date"] = bot.last_error_date
            info["last_error_message"] = bot.last_error_message or ""
        if bot.webhook_url:
            info["max_connections"] = bot.max_connections
            info["ip_address"] = bot.ip_address
        if bot.allowed_types != DEFAULT_ALLOWED_UPDATES:
            info["allowed_updates"] = [kind for kind in UPDATE_TYPES if kind in bot.allowed_types]
        return _ok(info)

    async def _get_updates(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if bot.webhook_url is not None:
            return _error(409, WEBHOOK_ACTIVE)
        offset = _integer(params, "offset", 0, -(2**31), 2**31 - 1)
        limit = _integer(params, "limit", 100, 1, 100)
        timeout = _integer(params, "timeout", 0, 0, LONG_POLL_MAX_TIMEOUT)
        self._register(bot, params)
        if offset < 0:  # forget all but the last -offset
            cut = max(0, len(bot.pending) + offset)
            bot.dropped.extend(update["update_id"] for update in bot.pending[:cut])
            del bot.pending[:cut]
        elif offset > 0:
            bot.confirmed.extend(update["update_id"] for update in bot.pending if update["update_id"] < offset)
            bot.pending[:] = [update for update in bot.pending if update["update_id"] >= offset]
        if bot.pending or timeout == 0:
            return _ok(bot.pending[:limit])
        self._end_poll(bot, (409, TERMINATED_BY_GET_UPDATES))
        poll = bot._poll = _Poll()
        bot.polling.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poll.wake.wait(), timeout)
        finally:
            if bot._poll is poll:
                bot._poll = None
                bot.polling.clear()
        if poll.ended_by is not None:
            return _error(*poll.ended_by)
        return _ok(bot.pending[:limit])

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

    def _get_chat_member_count(self, bot: FakeBot, params: dict[str, Any]) -> JSONResponse:
        if not params.get("chat_id"):
            return _error(400, "Bad Request: chat_id is empty")
        try:
            chat_id = int(params["chat_id"])
        except (TypeError, ValueError):
            return _error(400, "Bad Request: chat not found")
        if chat_id in bot.kicked_from:
            kind = bot.chat_kinds.get(chat_id, "supergroup")
            return _error(403, f"Forbidden: bot was kicked from the {kind} chat")
        if chat_id not in bot.member_counts:
            return _error(400, "Bad Request: chat not found")
        return _ok(bot.member_counts[chat_id])
