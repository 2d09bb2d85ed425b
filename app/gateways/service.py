"""Connecting, listing and using a user's gateways (only the Telegram bot kind so far)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import Message
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.audit import service as audit
from app.errors import BadUserInput, FieldError, NotFound
from app.gateways.inbox import InboxWriter
from app.gateways.models import EventKind, Gateway, GatewayType
from app.gateways.telegram import TelegramApi, check_token_format, message_key
from app.ids import new_id, new_secret

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram/{gateway_id}"


def webhook_url(public_url: str, gateway_id: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH.format(gateway_id=gateway_id)


async def connect_telegram_bot(
    ctx: ServiceContext,
    api: TelegramApi,
    public_url: str,
    allowed_updates: list[str],
    token: str,
    name: str | None = None,
) -> Gateway:
    """Checks the token with getMe, points the bot's webhook at us, then saves the gateway.

    Nothing is saved when Telegram rejects the token or cannot be reached.
    """
    token = token.strip()
    check_token_format(token)
    if name is not None and not (1 <= len(name.strip()) <= 128):
        raise BadUserInput("Name must be 1 to 128 characters", [FieldError("/name", "1 to 128 characters")])
    me = await api.get_me(token)
    gateway_id, secret = new_id(), new_secret()
    await api.set_webhook(token, webhook_url(public_url, gateway_id), secret, allowed_updates)
    async with in_transaction():
        # Telegram keeps one webhook per bot: an older gateway of the same bot gets no more updates.
        await Gateway.filter(bot_id=me.id, is_active=True).update(is_active=False)
        gateway = await Gateway.create(
            id=gateway_id,
            owner_id=ctx.user_id,
            type=GatewayType.TELEGRAM_BOT,
            name=(name or "").strip() or f"@{me.username}",
            bot_token=token,
            bot_id=me.id,
            bot_username=me.username,
            webhook_secret=secret,
        )
        await audit.record(ctx, "gateway.connect", "gateway", gateway.id, {"type": gateway.type.value})
    return gateway


async def disconnect(ctx: ServiceContext, api: TelegramApi, gateway_id: str) -> bool:
    gateway = await Gateway.get_or_none(id=gateway_id, owner_id=ctx.user_id, is_active=True)
    if gateway is None:
        raise NotFound("No such gateway")
    try:
        await api.delete_webhook(gateway.bot_token)
    except (TelegramNetworkError, TelegramAPIError) as exc:
        # Updates Telegram still sends are refused: the gateway is inactive.
        log.warning("deleteWebhook failed for gateway %s: %s", gateway.id, type(exc).__name__)
    async with in_transaction():
        await Gateway.filter(id=gateway.id).update(is_active=False)
        await audit.record(ctx, "gateway.disconnect", "gateway", gateway.id)
    return True


async def list_gateways(ctx: ServiceContext) -> list[Gateway]:
    return await Gateway.filter(owner_id=ctx.user_id).order_by("-created_at")


async def active_gateways(owner_id: str) -> list[Gateway]:
    return await Gateway.filter(owner_id=owner_id, is_active=True).order_by("created_at")


async def owner_of_active(gateway_id: str) -> tuple[str, set[GatewayType]] | None:
    """The owner of an active gateway and the types of all their active gateways, in one query."""
    owner = Subquery(Gateway.filter(id=gateway_id).values("owner_id"))
    rows = await Gateway.filter(owner_id=owner, is_active=True).values("id", "type", "owner_id")
    if not any(row["id"] == gateway_id for row in rows):
        return None
    return rows[0]["owner_id"], {GatewayType(row["type"]) for row in rows}


async def active_types(owner_id: str) -> set[GatewayType]:
    rows = await Gateway.filter(owner_id=owner_id, is_active=True).distinct().values_list("type", flat=True)
    return {GatewayType(t) for t in rows}


async def execute(
    owner_id: str,
    gateway_id: str,
    action: str,
    params: dict[str, Any],
    api: TelegramApi,
    inbox: InboxWriter,
) -> Any:
    """Calls an action on one of the owner's active gateways; a sent message becomes a
    `message_sent` event in the inbox."""
    gateway = await Gateway.get_or_none(id=gateway_id, owner_id=owner_id, is_active=True)
    if gateway is None:
        raise NotFound("No such active gateway")
    result = await api.call(gateway.bot_token, action, params)
    if isinstance(result, Message):
        await inbox.put(
            gateway.id,
            EventKind.MESSAGE_SENT,
            message_key(result),
            result.model_dump(mode="json", exclude_none=True, by_alias=True),
            chat_id=result.chat.id,
        )
    return result


@dataclass(frozen=True)
class GatewayRef:
    """What a plugin may know of a gateway: never its token or secret."""

    id: str
    type: GatewayType
    name: str
    bot_username: str | None

    @classmethod
    def of(cls, gateway: Gateway) -> GatewayRef:
        return cls(id=gateway.id, type=gateway.type, name=gateway.name, bot_username=gateway.bot_username)
