"""Bot API calls, all through aiogram's `Bot` with the server base from TELEGRAM_API_URL.

What Telegram refuses (a 4xx) is the caller's to fix: `TelegramRefused` (BAD_USER_INPUT) with
Telegram's own description; a token it does not know is `TokenRejected`. What keeps an answer from
coming (no connection, a timeout, a 5xx) is GATEWAY_UNREACHABLE, naming the API's address and the
cause in words; flood control (a 429) is `FloodControl`, which says how long Telegram asks to wait.
None of them ever holds the token, nor names an argument of any API: callers that know where a
value came from (the gateway service, for a `token` argument) say so.

aiogram is imported where it is used, never at import time: its types alone take about 165 MiB
(aiogram issue #1513), which a process that never calls Telegram does not need.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from app.errors import BadUserInput, GatewayUnreachable, PlugboardError
from app.gateways.intake import MAX_JSON_DEPTH as MAX_UPDATE_DEPTH
from app.gateways.public_url import HTTPS_ADVICE
from app.inputs import json_depth_exceeds
from app.logs import redact

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.exceptions import TelegramAPIError
    from aiogram.methods import TelegramMethod
    from aiogram.types import Message, User, WebhookInfo

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
# getMe, setWebhook, deleteWebhook and getWebhookInfo wait this long for Telegram: a user waits for them, and a
# connect may hold a bot's lock (on SQLite, the database's write lock) across two such calls.
CALL_TIMEOUT_SECONDS = 10
MAX_DESCRIPTION = 300
# Failures after which a request may have reached Telegram and been applied.
_AMBIGUOUS_CAUSES = frozenset({"timed out", "the server closed the connection", "connection reset by peer"})

# The gateway actions a plugin may call: Bot API method name -> aiogram's method class.
ACTIONS: dict[str, str] = {
    "sendMessage": "SendMessage",
    "editMessageText": "EditMessageText",
    "deleteMessage": "DeleteMessage",
    "answerCallbackQuery": "AnswerCallbackQuery",
}
# Actions made without aiogram (app/gateways/light_calls.py): their answer is a plain JSON value,
# so a worker whose plugins only read and count never loads aiogram's types to make them.
LIGHT_ACTIONS = frozenset({"getChatMemberCount"})


class MalformedToken(BadUserInput):
    """A text that cannot be a bot token; Telegram was not asked."""

    def __init__(self) -> None:
        super().__init__("That is not a Telegram bot token")


class TelegramRefused(BadUserInput):
    """Telegram answered a call with a 4xx: the call (or its token) is wrong, and trying again will not help.
    `error_code` and `description` are Telegram's own (the description without the token), when it
    answered with them."""

    def __init__(self, message: str, error_code: int | None = None, description: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.description = description


class TokenRejected(TelegramRefused):
    """Telegram does not know the token (401, or 404 for a token it cannot even parse)."""


class FloodControl(GatewayUnreachable):
    """A 429: Telegram asks the bot to wait `retry_after` seconds before calling again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PollingConflict(TelegramRefused):
    """getUpdates answered 409: a webhook is set for the bot, or another program polls it with the
    same token. `webhook_set` tells which (Telegram's description says)."""

    def __init__(self, message: str, webhook_set: bool) -> None:
        super().__init__(message)
        self.webhook_set = webhook_set


class UnreadableUpdates(GatewayUnreachable):
    """getUpdates answered 200 with a body that cannot be read as a list of updates (JSON nested
    deeper than an update is, or not the Bot API's answer). `body` is the answer as it came."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class WebhookOutcomeUnknown(GatewayUnreachable):
    """setWebhook sent, but no answer came (a timeout, a dropped connection): Telegram may have applied it."""


class UnknownAction(BadUserInput):
    """A gateway action plugins may not call."""


def check_token_format(token: str) -> None:
    if not TOKEN_PATTERN.match(token):
        raise MalformedToken()


def bot_id_of(token: str) -> int:
    """The bot's id: the number before the colon of a well-formed token (public, unlike the rest)."""
    return int(token.partition(":")[0])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_cause(exc: BaseException) -> str:
    """Why a connection to the Bot API failed, in words ("connection refused", "timed out"…)."""
    import aiohttp

    for error in _chain(exc):
        if isinstance(error, TimeoutError):  # asyncio's and aiohttp's timeouts too
            return "timed out"
        if isinstance(error, (aiohttp.ClientConnectorDNSError, socket.gaierror)):
            return "the host name could not be resolved"
        if isinstance(error, aiohttp.ClientConnectorCertificateError):
            return "its TLS certificate was not accepted"
        if isinstance(error, (aiohttp.ClientSSLError, ssl.SSLError)):
            return "the TLS handshake failed"
        if isinstance(error, aiohttp.ServerDisconnectedError):
            return "the server closed the connection"
        if isinstance(error, OSError):
            number = error.errno
            if number is None and (match := re.search(r"\[Errno (\d+)\]", str(error))):
                number = int(match.group(1))  # "Multiple exceptions: [Errno 111] …" from asyncio
            if number:
                return os.strerror(number).lower()
    return "the connection failed"


def public_address(api_url: str) -> str:
    """TELEGRAM_API_URL as it may be shown: without a user or password."""
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _description(exc: TelegramAPIError, token: str) -> str:
    """Telegram's description of a refusal, printable, short, and without the token."""
    return clean_description(str(exc.message), token)


def clean_description(text: str, token: str) -> str:
    """A description Telegram gave, printable, short, and without the token."""
    text = redact(text.replace(token, "[redacted]"))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "…"
    return text or "no description"


def _status_of(exc: TelegramAPIError) -> int | None:
    """The HTTP status behind one of aiogram's refusals."""
    from aiogram.exceptions import TelegramBadRequest, TelegramConflictError, TelegramForbiddenError

    statuses = {TelegramBadRequest: 400, TelegramForbiddenError: 403, TelegramConflictError: 409}
    return next((status for kind, status in statuses.items() if isinstance(exc, kind)), None)


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TelegramApi:
    """One aiogram `Bot`, with its own HTTP session, per token in use; `forget` closes a token's."""

    def __init__(self, api_url: str, timeout_seconds: int = CALL_TIMEOUT_SECONDS) -> None:
        self.api_url = api_url
        self.address = public_address(api_url)
        self.timeout_seconds = timeout_seconds
        self._bots: dict[str, Bot] = {}

    def bot(self, token: str) -> Bot:
        key = _token_key(token)
        bot = self._bots.get(key)
        if bot is None:
            from aiogram import Bot
            from aiogram.client.session.aiohttp import AiohttpSession
            from aiogram.client.telegram import TelegramAPIServer

            bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(self.api_url)))
            self._bots[key] = bot
        return bot

    async def close(self) -> None:
        """Closes every bot's HTTP session at once (aiohttp's close waits a moment for each)."""
        bots, self._bots = self._bots, {}
        await asyncio.gather(*(bot.session.close() for bot in bots.values()), return_exceptions=True)

    async def get_me(self, token: str) -> User:
        try:
            return await self.bot(token).get_me(request_timeout=self.timeout_seconds)
        except Exception as exc:
            failure = self.failure("getMe", token, exc)
            if failure is exc:
                raise
            if isinstance(failure, TokenRejected):
                await self.forget(token)
            raise failure from None

    async def set_webhook(self, token: str, url: str, secret: str, allowed_updates: list[str]) -> None:
        try:
            await self.bot(token).set_webhook(
                url, secret_token=secret, allowed_updates=allowed_updates, request_timeout=self.timeout_seconds
            )
        except Exception as exc:
            failure = self.failure("setWebhook", token, exc)
            if failure is exc:
                raise
            raise failure from None

    async def get_webhook_info(self, token: str) -> WebhookInfo:
        """What Telegram knows of the bot's webhook: its URL, allowed_updates, pending updates and last error."""
        try:
            return await self.bot(token).get_webhook_info(request_timeout=self.timeout_seconds)
        except Exception as exc:
            failure = self.failure("getWebhookInfo", token, exc)
            if failure is exc:
                raise
            raise failure from None

    async def delete_webhook(self, token: str) -> None:
        try:
            await self.bot(token).delete_webhook(request_timeout=self.timeout_seconds)
        except Exception as exc:
            failure = self.failure("deleteWebhook", token, exc)
            if failure is exc:
                raise
            raise failure from None

    def failure(self, method: str, token: str, exc: Exception) -> Exception:
        """The error to report for a failed call: ours for what Telegram (or the network) said,
        `exc` itself for anything else."""
        from aiogram.exceptions import (
            ClientDecodeError,
            TelegramAPIError,
            TelegramNetworkError,
            TelegramNotFound,
            TelegramRetryAfter,
            TelegramServerError,
            TelegramUnauthorizedError,
        )

        if isinstance(exc, PlugboardError):
            return exc
        if isinstance(exc, TelegramNetworkError):
            cause = network_cause(exc)
            unknown = method == "setWebhook" and cause in _AMBIGUOUS_CAUSES
            kind = WebhookOutcomeUnknown if unknown else GatewayUnreachable
            return kind(f"The Telegram Bot API at {self.address} could not be reached: {cause}")
        if isinstance(exc, TelegramRetryAfter):
            return FloodControl(
                f"The Telegram Bot API at {self.address} asks to wait {exc.retry_after} s before trying again",
                exc.retry_after,
            )
        if isinstance(exc, TelegramServerError):
            return GatewayUnreachable(f"The Telegram Bot API at {self.address} failed: {_description(exc, token)}")
        if isinstance(exc, (TelegramUnauthorizedError, TelegramNotFound)):
            return TokenRejected(f"Telegram rejected the bot token: {_description(exc, token)}")
        if isinstance(exc, TelegramAPIError):  # 400, 403, 409, 413: Telegram refused the call
            description = _description(exc, token)
            if method == "setWebhook" and "bad webhook" in description.lower():
                return TelegramRefused(f"Telegram refused the webhook URL: {description}. {HTTPS_ADVICE}")
            return TelegramRefused(f"Telegram refused {method}: {description}", _status_of(exc), description)
        if isinstance(exc, ClientDecodeError):
            return GatewayUnreachable(
                f"The Telegram Bot API at {self.address} answered with something that is not a Bot API response"
            )
        return exc

    def method(self, action: str, params: dict[str, Any]) -> TelegramMethod[Any]:
        """The Bot API call a plugin asks for, checked; `UnknownAction` or BAD_USER_INPUT when it is not one."""
        name = ACTIONS.get(action)
        if name is None:
            raise UnknownAction(f"Unknown gateway action {action!r}")
        import aiogram.methods
        from pydantic import ValidationError

        method_type: type[TelegramMethod[Any]] = getattr(aiogram.methods, name)
        try:
            return method_type.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}"
                for error in exc.errors()[:3]
            )
            raise BadUserInput(f"Bad parameters for {action}: {problems}") from None

    async def send(self, token: str, method: TelegramMethod[Any]) -> Any:
        """Makes one call, once: the send queue (app/gateways/sendqueue.py) decides about waiting and retrying."""
        try:
            return await self.bot(token)(method, request_timeout=self.timeout_seconds)
        except Exception as exc:
            failure = self.failure(type(method).__api_method__, token, exc)
            if failure is exc:
                raise
            raise failure from None

    async def get_updates(
        self, token: str, offset: int | None, timeout: int, allowed_updates: list[str], limit: int = 100
    ) -> list[Any]:
        """One long poll: the updates Telegram holds for the bot from `offset` on (confirming every
        one before it), waiting up to `timeout` seconds for one to come. Each update is the JSON
        value Telegram sent, as parsed from its answer: never aiogram's model of it, which would
        lose what the model does not know, and cost a validation per update.

        Raises PollingConflict (409), TokenRejected, FloodControl, GatewayUnreachable (network,
        5xx, and UnreadableUpdates), TelegramRefused (another 4xx)."""
        import aiohttp

        bot = self.bot(token)
        params: dict[str, Any] = {"limit": limit, "timeout": timeout, "allowed_updates": allowed_updates}
        if offset is not None:
            params["offset"] = offset
        session = cast("AiohttpSession", bot.session)  # the only session `bot` makes
        try:
            http = await session.create_session()
            url = session.api.api_url(token=token, method="getUpdates")
            wait = aiohttp.ClientTimeout(total=timeout + self.timeout_seconds)
            async with http.post(url, json=params, timeout=wait) as response:
                status, body = response.status, await response.read()
            if status == 200:
                return self._updates(body)
            from aiogram.methods import GetUpdates

            # Telegram's error, as aiogram reads one (TelegramConflictError, TelegramRetryAfter…).
            session.check_response(bot, GetUpdates(**params), status, body.decode("utf-8", "replace"))
            raise UnreadableUpdates(  # an error status with "ok": true
                f"The Telegram Bot API at {self.address} answered getUpdates with status {status}", body
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayUnreachable(
                f"The Telegram Bot API at {self.address} could not be reached: {network_cause(exc)}"
            ) from None
        except Exception as exc:
            from aiogram.exceptions import TelegramConflictError

            if isinstance(exc, TelegramConflictError):
                description = _description(exc, token)
                webhook_set = "webhook" in description.lower()  # "…while webhook is active", "…by setWebhook request"
                raise PollingConflict(f"Telegram refused getUpdates: {description}", webhook_set) from None
            failure = self.failure("getUpdates", token, exc)
            if failure is exc:
                raise
            raise failure from None

    def _updates(self, body: bytes) -> list[Any]:
        """The `result` of a getUpdates answer (a JSON array), or UnreadableUpdates."""
        unreadable = UnreadableUpdates(
            f"The Telegram Bot API at {self.address} answered getUpdates with something that is not a list of updates",
            body,
        )
        if json_depth_exceeds(body, MAX_UPDATE_DEPTH + 2):  # the answer's object and its array
            raise unreadable
        try:
            answer = json.loads(body)
        except ValueError:
            raise unreadable from None
        if not isinstance(answer, dict) or answer.get("ok") is not True or not isinstance(answer.get("result"), list):
            raise unreadable
        return answer["result"]

    async def forget(self, token: str) -> None:
        bot = self._bots.pop(_token_key(token), None)
        if bot is not None:
            await bot.session.close()


def message_key(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"
