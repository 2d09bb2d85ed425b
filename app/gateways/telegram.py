"""Bot API calls, all through aiogram's `Bot` with the server base from TELEGRAM_API_URL."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError, TelegramUnauthorizedError
from aiogram.methods import AnswerCallbackQuery, DeleteMessage, EditMessageText, SendMessage, TelegramMethod
from aiogram.types import Message, User

from app.errors import BadUserInput, FieldError, GatewayUnreachable

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")

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


class TelegramApi:
    """One aiogram `Bot` per token, sharing this process's HTTP session pool."""

    def __init__(self, api_url: str) -> None:
        self.server = TelegramAPIServer.from_base(api_url)
        self._bots: dict[str, Bot] = {}

    def bot(self, token: str) -> Bot:
        key = hashlib.sha256(token.encode()).hexdigest()
        bot = self._bots.get(key)
        if bot is None:
            bot = Bot(token, session=AiohttpSession(api=self.server))
            self._bots[key] = bot
        return bot

    async def close(self) -> None:
        bots, self._bots = self._bots, {}
        for bot in bots.values():
            await bot.session.close()

    async def get_me(self, token: str) -> User:
        try:
            return await self.bot(token).get_me()
        except TelegramUnauthorizedError:
            await self._forget(token)
            raise BadUserInput("Telegram rejected the bot token", [FieldError("/token", "rejected by Telegram")])
        except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
            raise GatewayUnreachable(f"The Telegram Bot API could not be reached: {type(exc).__name__}")

    async def set_webhook(self, token: str, url: str, secret: str, allowed_updates: list[str]) -> None:
        try:
            await self.bot(token).set_webhook(url, secret_token=secret, allowed_updates=allowed_updates)
        except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
            raise GatewayUnreachable(f"The Telegram Bot API could not be reached: {type(exc).__name__}")

    async def delete_webhook(self, token: str) -> None:
        await self.bot(token).delete_webhook()

    async def call(self, token: str, action: str, params: dict[str, Any]) -> Any:
        method_type = ACTIONS.get(action)
        if method_type is None:
            raise BadUserInput(f"Unknown gateway action {action!r}", [FieldError("/action", "not supported")])
        method = method_type.model_validate(params)
        return await self.bot(token)(method)

    async def _forget(self, token: str) -> None:
        key = hashlib.sha256(token.encode()).hexdigest()
        bot = self._bots.pop(key, None)
        if bot is not None:
            await bot.session.close()


def message_key(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"
