"""Bot API calls, all through aiogram's `Bot` with the server base from TELEGRAM_API_URL.

What Telegram refuses (a 4xx) is the user's to fix: BAD_USER_INPUT with Telegram's own description.
What keeps an answer from coming (no connection, a timeout, a 5xx, flood control) is
GATEWAY_UNREACHABLE, naming the API's address and the cause in words. Neither ever holds the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import AnswerCallbackQuery, DeleteMessage, EditMessageText, SendMessage, TelegramMethod
from aiogram.types import Message, User

from app.errors import BadUserInput, FieldError, GatewayUnreachable, PlugboardError
from app.gateways.public_url import HTTPS_ADVICE
from app.logs import redact

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
# getMe, setWebhook and deleteWebhook wait this long for Telegram: a user waits for them, and a
# connect may hold a bot's lock (on SQLite, the database's write lock) across two such calls.
CALL_TIMEOUT_SECONDS = 10
MAX_DESCRIPTION = 300
# Failures after which a request may have reached Telegram and been applied.
_AMBIGUOUS_CAUSES = frozenset({"timed out", "the server closed the connection", "connection reset by peer"})

# The gateway actions a plugin may call, by Bot API method name.
ACTIONS: dict[str, type[TelegramMethod[Any]]] = {
    "sendMessage": SendMessage,
    "editMessageText": EditMessageText,
    "deleteMessage": DeleteMessage,
    "answerCallbackQuery": AnswerCallbackQuery,
}


def check_token_format(token: str) -> None:
    if not TOKEN_PATTERN.match(token):
        raise BadUserInput(
            "That is not a Telegram bot token", [FieldError("/token", "expected the form 123456:ABC-DEF…")]
        )


class WebhookOutcomeUnknown(GatewayUnreachable):
    """setWebhook sent, but no answer came (a timeout, a dropped connection): Telegram may have applied it."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_cause(exc: BaseException) -> str:
    """Why a connection to the Bot API failed, in words ("connection refused", "timed out"…)."""
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
    text = redact(str(exc.message).replace(token, "[redacted]"))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "…"
    return text or "no description"


class TelegramApi:
    """One aiogram `Bot`, with its own HTTP session, per token in use; `forget` closes a token's."""

    def __init__(self, api_url: str, timeout_seconds: int = CALL_TIMEOUT_SECONDS) -> None:
        self.server = TelegramAPIServer.from_base(api_url)
        self.address = public_address(api_url)
        self.timeout_seconds = timeout_seconds
        self._bots: dict[str, Bot] = {}

    def bot(self, token: str) -> Bot:
        key = hashlib.sha256(token.encode()).hexdigest()
        bot = self._bots.get(key)
        if bot is None:
            bot = Bot(token, session=AiohttpSession(api=self.server))
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
            if isinstance(failure, BadUserInput):
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
        if isinstance(exc, PlugboardError):
            return exc
        if isinstance(exc, TelegramNetworkError):
            cause = network_cause(exc)
            unknown = method == "setWebhook" and cause in _AMBIGUOUS_CAUSES
            kind = WebhookOutcomeUnknown if unknown else GatewayUnreachable
            return kind(f"The Telegram Bot API at {self.address} could not be reached: {cause}")
        if isinstance(exc, TelegramRetryAfter):
            return GatewayUnreachable(
                f"The Telegram Bot API at {self.address} asks to wait {exc.retry_after} s before trying again"
            )
        if isinstance(exc, TelegramServerError):
            return GatewayUnreachable(
                f"The Telegram Bot API at {self.address} failed: {_description(exc, token)}"
            )
        if isinstance(exc, (TelegramUnauthorizedError, TelegramNotFound)):
            return BadUserInput(
                f"Telegram rejected the bot token: {_description(exc, token)}",
                [FieldError("/token", "rejected by Telegram")],
            )
        if isinstance(exc, TelegramAPIError):  # 400, 403, 409, 413: Telegram refused the call
            description = _description(exc, token)
            if method == "setWebhook" and "bad webhook" in description.lower():
                return BadUserInput(f"Telegram refused the webhook URL: {description}. {HTTPS_ADVICE}")
            return BadUserInput(f"Telegram refused {method}: {description}")
        if isinstance(exc, ClientDecodeError):
            return GatewayUnreachable(
                f"The Telegram Bot API at {self.address} answered with something that is not a Bot API response"
            )
        return exc

    async def call(self, token: str, action: str, params: dict[str, Any]) -> Any:
        method_type = ACTIONS.get(action)
        if method_type is None:
            raise BadUserInput(f"Unknown gateway action {action!r}", [FieldError("/action", "not supported")])
        method = method_type.model_validate(params)
        return await self.bot(token)(method)

    async def forget(self, token: str) -> None:
        key = hashlib.sha256(token.encode()).hexdigest()
        bot = self._bots.pop(key, None)
        if bot is not None:
            await bot.session.close()


def message_key(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"
