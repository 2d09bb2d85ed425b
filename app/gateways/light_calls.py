"""Bot API calls made without aiogram (telegram.LIGHT_ACTIONS): a JSON request, a JSON answer. A
worker whose plugins only count (Channel Analytics reads each chat's member count) then never
loads aiogram's types, 165 MiB on their own. Telegram's answers become the same errors as
aiogram's calls do (app/gateways/telegram.py), so the send queue and plugins see no difference."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from app.errors import BadUserInput, GatewayUnreachable
from app.gateways.telegram import (
    LIGHT_ACTIONS,
    FloodControl,
    TelegramRefused,
    TokenRejected,
    UnknownAction,
    clean_description,
    network_cause,
    public_address,
)
from app.inputs import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    import aiohttp


def checked_params(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a light action, checked as aiogram would: BAD_USER_INPUT otherwise."""
    if action not in LIGHT_ACTIONS:
        raise UnknownAction(f"Unknown gateway action {action!r}")
    unknown = sorted(set(params) - {"chat_id"})
    chat_id = params.get("chat_id")
    if unknown:
        raise BadUserInput(f"Bad parameters for {action}: {unknown[0]}: Extra inputs are not permitted")
    is_id = type(chat_id) is int and INT64_MIN <= chat_id <= INT64_MAX
    is_name = isinstance(chat_id, str) and chat_id.startswith("@") and 1 < len(chat_id) <= 64
    if not (is_id or is_name):
        raise BadUserInput(f"Bad parameters for {action}: chat_id: a chat id or an @username is required")
    return {"chat_id": chat_id}


class LightCalls:
    """One HTTP session for the light calls of every bot (made on first use)."""

    def __init__(self, api_url: str, timeout_seconds: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.address = public_address(api_url)
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def call(self, token: str, action: str, params: dict[str, Any]) -> Any:
        """Makes one call, once (the send queue decides about waiting and retrying); its `result`."""
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))
        try:
            async with self._session.post(f"{self.api_url}/bot{token}/{action}", json=params) as response:
                status, body = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayUnreachable(
                f"The Telegram Bot API at {self.address} could not be reached: {network_cause(exc)}"
            ) from None
        return self._result(action, token, status, body)

    def _result(self, action: str, token: str, status: int, body: bytes) -> Any:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            if status >= 500:
                raise GatewayUnreachable(f"The Telegram Bot API at {self.address} failed with status {status}")
            raise GatewayUnreachable(
                f"The Telegram Bot API at {self.address} answered with something that is not a Bot API response"
            )
        if answer["ok"] and status == 200:
            return answer.get("result")
        description = clean_description(str(answer.get("description") or ""), token) or "no description"
        error_code = answer.get("error_code")
        code: int = error_code if type(error_code) is int else status
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if code == 429 and isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
            raise FloodControl(
                f"The Telegram Bot API at {self.address} asks to wait {retry_after} s before trying again",
                retry_after,
            )
        if code in (401, 404):
            raise TokenRejected(f"Telegram rejected the bot token: {description}")
        if code >= 500 or code < 400:
            raise GatewayUnreachable(f"The Telegram Bot API at {self.address} failed: {description}")
        raise TelegramRefused(f"Telegram refused {action}: {description}", code, description)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
