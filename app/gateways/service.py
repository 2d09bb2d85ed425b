"""Connecting, listing and using a user's gateways (only the Telegram bot kind so far)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram.types import Message, User
from tortoise import timezone
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.audit import service as audit
from app.db import serialize
from app.errors import BadUserInput, FieldError, GatewayUnreachable, NotFound, PlugboardError
from app.gateways.inbox import InboxWriter, RowRefused
from app.gateways.models import EventKind, Gateway, GatewayType
from app.gateways.telegram import TelegramApi, WebhookOutcomeUnknown, check_token_format, message_key
from app.ids import new_id, new_secret
from app.inputs import INT64_MAX, INT64_MIN, is_id, text_problem

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram/{gateway_id}"
MAX_NAME_LENGTH = 128  # the gateways.name column
MAX_USERNAME_LENGTH = 64  # the gateways.bot_username column


def webhook_url(public_url: str, gateway_id: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH.format(gateway_id=gateway_id)


def _checked_name(name: str | None) -> str | None:
    if name is None:
        return None
    if problem := text_problem(name):
        raise BadUserInput(f"Name {problem}", [FieldError("/name", problem)])
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise BadUserInput("Name must be 1 to 128 characters", [FieldError("/name", "1 to 128 characters")])
    return name


def _storable_bot(me: User) -> tuple[int, str]:
    """The bot's id and username from getMe, when the gateways table can hold them."""
    username = me.username or ""
    if not (INT64_MIN <= me.id <= INT64_MAX and 1 <= len(username) <= MAX_USERNAME_LENGTH) or text_problem(username):
        raise GatewayUnreachable("The Telegram Bot API answered getMe with a bot that cannot be stored")
    return me.id, username


def _bot_lock(bot_id: int) -> str:
    return f"telegram-bot:{bot_id}"


class _WebhookSwitch:
    """Points a bot's webhook at a new gateway; `back()` points it again at the gateway it served
    before (or deletes it when there was none), for a connect that fails afterwards."""

    def __init__(self, api: TelegramApi, token: str, public_url: str, allowed_updates: list[str]) -> None:
        self.api = api
        self.token = token
        self.public_url = public_url
        self.allowed_updates = allowed_updates
        self.previous: Gateway | None = None
        self.switched = False

    async def to(self, gateway_id: str, secret: str, previous: Gateway | None) -> None:
        self.previous = previous
        try:
            await self.api.set_webhook(self.token, webhook_url(self.public_url, gateway_id), secret, self.allowed_updates)
        except WebhookOutcomeUnknown:
            self.switched = True  # it may have been applied
            raise
        self.switched = True

    async def back(self) -> None:
        if not self.switched:
            return
        self.switched = False
        previous = self.previous
        try:
            if previous is None:
                await self.api.delete_webhook(self.token)
            else:
                url = webhook_url(self.public_url, previous.id)
                await self.api.set_webhook(self.token, url, previous.webhook_secret, self.allowed_updates)
        except Exception as exc:  # the connect's own error is the one to report
            reason = exc.message if isinstance(exc, PlugboardError) else type(exc).__name__
            log.error(
                "a failed connect could not point the webhook back at %s: %s",
                f"gateway {previous.id}" if previous else "nothing (delete)",
                reason,
            )


async def connect_telegram_bot(
    ctx: ServiceContext,
    api: TelegramApi,
    public_url: str,
    allowed_updates: list[str],
    token: str,
    name: str | None = None,
) -> Gateway:
    """Checks the token with getMe, points the bot's webhook at us, then saves the gateway.

    Everything is checked before setWebhook. Connects of one bot run one at a time, across
    processes, from reading the bot's active gateway to the commit: the gateway left active is
    always the one Telegram points at, and a bot has at most one. A gateway it replaces is
    deactivated, with an event in its owner's audit log. When anything fails after setWebhook,
    the webhook is pointed back at the gateway it served before, which stays active.
    """
    token = token.strip()
    check_token_format(token)
    name = _checked_name(name)
    me = await api.get_me(token)
    bot_id, username = _storable_bot(me)
    gateway_id, secret = new_id(), new_secret()
    switch = _WebhookSwitch(api, token, public_url, allowed_updates)
    try:
        async with in_transaction() as connection:
            await serialize(connection, _bot_lock(bot_id))
            active = await Gateway.filter(bot_id=bot_id, is_active=True).order_by("-created_at")
            try:
                await switch.to(gateway_id, secret, active[0] if active else None)
                gateway = await Gateway.create(
                    id=gateway_id,
                    owner_id=ctx.user_id,
                    type=GatewayType.TELEGRAM_BOT,
                    name=name or f"@{username}",
                    bot_token=token,
                    bot_id=bot_id,
                    bot_username=username,
                    webhook_secret=secret,
                    allowed_updates=allowed_updates,
                )
                await _retire(ctx, active, username)
                await audit.record(ctx, "gateway.connect", "gateway", gateway.id, {"type": gateway.type.value})
            except BaseException:
                await switch.back()  # still holding the bot's lock
                raise
    except BaseException:
        await switch.back()  # the commit failed
        raise
    return gateway


async def _retire(ctx: ServiceContext, gateways: list[Gateway], username: str) -> None:
    """Deactivates a bot's older gateways (Telegram keeps one webhook per bot), telling their owners."""
    if not gateways:
        return
    await Gateway.filter(id__in=[g.id for g in gateways]).update(is_active=False, updated_at=timezone.now())
    for old in gateways:
        by = "you" if old.owner_id == ctx.user_id else "another account"
        await audit.record_for(
            old.owner_id,
            "gateway.deactivate",
            "gateway",
            old.id,
            {"reason": f"@{username} was connected again, by {by}; Telegram sends its updates to one gateway only"},
        )


async def disconnect(ctx: ServiceContext, api: TelegramApi, gateway_id: str) -> bool:
    if not is_id(gateway_id):
        raise NotFound("No such gateway")
    gateway = await Gateway.get_or_none(id=gateway_id, owner_id=ctx.user_id, is_active=True)
    if gateway is None:
        raise NotFound("No such gateway")
    async with in_transaction() as connection:
        if gateway.bot_id is not None:
            await serialize(connection, _bot_lock(gateway.bot_id))
        if not await Gateway.filter(id=gateway.id, is_active=True).update(is_active=False, updated_at=timezone.now()):
            raise NotFound("No such gateway")  # deactivated meanwhile: disconnected, or the bot connected again
        await audit.record(ctx, "gateway.disconnect", "gateway", gateway.id)
        try:
            await api.delete_webhook(gateway.bot_token)
        except PlugboardError as exc:
            # Updates Telegram still sends are refused: the gateway is inactive.
            log.warning("deleteWebhook failed for gateway %s: %s", gateway.id, exc.message)
    await api.forget(gateway.bot_token)
    return True


async def request_update_types(owner_id: str, api: TelegramApi, public_url: str, allowed_updates: list[str]) -> None:
    """Re-registers the webhook of each of the owner's bots that asks Telegram for other update
    types than `allowed_updates`. A bot Telegram cannot be told about now keeps its old types
    (and its record says so), to be told with the next change."""
    for gateway in await Gateway.filter(owner_id=owner_id, is_active=True):
        if gateway.allowed_updates == allowed_updates or gateway.bot_id is None:
            continue
        try:
            async with in_transaction() as connection:
                await serialize(connection, _bot_lock(gateway.bot_id))
                if not await Gateway.exists(id=gateway.id, is_active=True):
                    continue  # replaced or disconnected meanwhile
                url = webhook_url(public_url, gateway.id)
                await api.set_webhook(gateway.bot_token, url, gateway.webhook_secret, allowed_updates)
                await Gateway.filter(id=gateway.id).update(allowed_updates=allowed_updates)
        except Exception as exc:
            reason = exc.message if isinstance(exc, PlugboardError) else type(exc).__name__
            log.warning("gateway %s still asks Telegram for %s: %s", gateway.id, gateway.allowed_updates, reason)


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
        try:
            await inbox.put(
                gateway.id,
                EventKind.MESSAGE_SENT,
                message_key(result),
                result.model_dump(mode="json", exclude_none=True, by_alias=True),
                chat_id=result.chat.id,
            )
        except RowRefused as refused:  # the message is sent: only its message_sent event is lost
            log.warning("message_sent event of gateway %s not stored: %s", gateway.id, refused.reason)
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
