"""Connecting, listing and using a user's gateways (only the Telegram bot kind so far).

`GatewayService` is built once per process with what it needs (the Bot API client, the inbox, the
send queue, the webhook secret cache, and the bots' registration, which knows this server's public
URL and what each bot must ask Telegram for); callers pass only what a request says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tortoise import timezone
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.audit import writes as audit
from app.db import serialize
from app.db_errors import said_as_database_failure
from app.errors import BadUserInput, FieldError, GatewayUnreachable, NotFound, PlugboardError
from app.gateways import status as gateway_status
from app.gateways.inbox_writer import InboxWriter, RowRefused
from app.gateways.light_calls import LightCalls, checked_params
from app.gateways.models import Delivery, EventKind, Gateway, GatewayStatus, GatewayType, sealed_secret, sealed_token
from app.gateways.registration import WEBHOOK_PATH as WEBHOOK_PATH  # where app.main finds it
from app.gateways.registration import Registration, bot_lock, webhook_url
from app.gateways.sealed import unreadable
from app.gateways.secrets import GatewaySecrets
from app.gateways.sendqueue import SendQueue
from app.gateways.telegram import (
    LIGHT_ACTIONS,
    MalformedToken,
    TelegramApi,
    TokenRejected,
    WebhookOutcomeUnknown,
    bot_id_of,
    check_token_format,
    message_key,
)
from app.ids import new_id, new_secret
from app.inputs import INT64_MAX, INT64_MIN, is_id, text_problem
from app.secrets_at_rest import SecretUnreadable

if TYPE_CHECKING:
    from aiogram.types import User

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 128  # the gateways.name column
MAX_USERNAME_LENGTH = 64  # the gateways.bot_username column


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


_bot_lock = bot_lock


class _WebhookSwitch:
    """Points a bot's webhook at a new gateway (or deletes it, when the deployment polls); `back()`
    points it again at the gateway it served before (or deletes it when there was none), for a
    connect that fails afterwards."""

    def __init__(self, registration: Registration, token: str, allowed_updates: list[str]) -> None:
        self.registration = registration
        self.api = registration.api
        self.token = token
        self.allowed_updates = allowed_updates
        self.previous: Gateway | None = None
        self.switched = False

    async def to(self, gateway_id: str, secret: str, previous: Gateway | None) -> None:
        self.previous = previous
        try:
            await self.registration.register(self.token, gateway_id, secret, self.allowed_updates)
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
                await self.registration.register(self.token, previous.id, previous.secret, self.allowed_updates)
        except Exception as exc:  # the connect's own error is the one to report
            reason = exc.message if isinstance(exc, PlugboardError) else type(exc).__name__
            log.error(
                "a failed connect could not point the webhook back at %s: %s",
                f"gateway {previous.id}" if previous else "nothing (delete)",
                reason,
            )


async def _retire(ctx: ServiceContext, gateways: list[Gateway], username: str) -> None:
    """Deactivates a bot's older gateways (Telegram keeps one webhook per bot), DISCONNECTED in the
    same write, telling their owners."""
    for old in gateways:
        by = "you" if old.owner_id == ctx.user_id else "another account"
        reason = f"@{username} was connected again, by {by}; Telegram sends its updates to one gateway only"
        await Gateway.filter(id=old.id).update(
            is_active=False, status=GatewayStatus.DISCONNECTED, status_reason=reason, updated_at=timezone.now()
        )
        await audit.record_for(old.owner_id, "gateway.deactivate", "gateway", old.id, {"reason": reason})


def _reconnected(ctx: ServiceContext, active: list[Gateway], token: str) -> Gateway | None:
    """The caller's connected gateway of this bot that a connect brings back instead of replacing:
    one whose token Telegram refused, or whose token differs from this one (a bot has one token:
    a new one from @BotFather means the old one was revoked, noticed or not). It keeps its id,
    webhook URL and secret, history and audit trail; only the token and the status change.

    A DISCONNECTED gateway (disconnected by its owner, or retired by a later connect) is not
    brought back: its end was a deliberate act with its own audit event, and a later connect is a
    new connection. Nothing the user sees is lost by that: installs, their runs and analytics
    belong to the owner's installs, not to a gateway. A connect with the same token as a working
    connected gateway is a new gateway too, as before (the older one is retired)."""
    mine = [g for g in active if g.owner_id == ctx.user_id]
    if not mine:
        return None
    gateway = mine[0]
    if gateway.status == GatewayStatus.TOKEN_REJECTED or token_of(gateway) != token:
        return gateway
    return None


def token_of(gateway: Gateway) -> str | None:
    """The gateway's token, or None when it does not decrypt."""
    try:
        return gateway.token
    except SecretUnreadable:
        return None


def _secret_or_new(gateway: Gateway) -> str:
    """The gateway's webhook secret, or a new one when it does not decrypt (a reconnect repairs it)."""
    try:
        return gateway.secret
    except SecretUnreadable:
        return new_secret()


def _token_argument(exc: MalformedToken | TokenRejected) -> BadUserInput:
    """The Bot API client's error about a token, pointing at the `token` argument it came from."""
    detail = "expected the form 123456:ABC-DEF…" if isinstance(exc, MalformedToken) else "rejected by Telegram"
    return BadUserInput(exc.message, [FieldError("/token", detail)])


class GatewayService:
    def __init__(
        self,
        api: TelegramApi,
        inbox: InboxWriter,
        sends: SendQueue,
        secrets: GatewaySecrets,
        registration: Registration,
        gateways_changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self.light_calls = LightCalls(api.api_url, api.timeout_seconds)
        self.inbox = inbox
        self.sends = sends
        self.secrets = secrets
        # What each bot must ask Telegram for, and how (app/gateways/registration.py).
        self.registration = registration
        registration.token_rejected = self.token_rejected  # a 401 to setWebhook and the like
        self.public_url = registration.public_url
        # Told, in the transaction that changes them, whose active gateways changed (their installs'
        # states and routes depend on them).
        self.gateways_changed = gateways_changed

    async def _changed(self, owner_ids: list[str]) -> None:
        if self.gateways_changed is None:
            return
        for owner_id in dict.fromkeys(owner_ids):
            await self.gateways_changed(owner_id)

    def webhook_url(self, gateway_id: str) -> str:
        return webhook_url(self.public_url, gateway_id)

    async def token_rejected(self, gateway_id: str, token: str) -> bool:
        """Call on a 401 (`TokenRejected`) from any Bot API call made with `token` for this gateway
        (a send, setWebhook, deleteWebhook, getWebhookInfo, getUpdates). The gateway becomes
        TOKEN_REJECTED, once, unless a reconnect replaced the token meanwhile; its owner's installs
        that need the bot wait for it, and this process's webhook refuses its updates at once (other
        processes within GATEWAY_CACHE_SECONDS). Returns whether the status changed."""
        changed = await gateway_status.token_rejected(gateway_id, token, gateways_changed=self.gateways_changed)
        self.secrets.forget(gateway_id)
        if changed:
            await self.api.forget(token)  # a dead token's HTTP session
        return changed

    # --- queries ------------------------------------------------------------------------------

    async def active_gateways(self, owner_id: str) -> list[Gateway]:
        """The owner's connected gateways that work: those a plugin may use."""
        working = Gateway.filter(owner_id=owner_id, is_active=True, status__in=gateway_status.WORKING_STATUSES)
        async with said_as_database_failure("gateway lookup"):
            return await working.order_by("created_at")

    async def list_gateways(self, ctx: ServiceContext) -> list[Gateway]:
        return await Gateway.filter(owner_id=ctx.user_id).order_by("-created_at")

    # --- connecting ---------------------------------------------------------------------------

    async def connect_telegram_bot(self, ctx: ServiceContext, token: str, name: str | None = None) -> Gateway:
        """Checks the token with getMe, points the bot's webhook at us, then saves the gateway.

        Everything is checked before setWebhook. Connects of one bot run one at a time, across
        processes, from reading the bot's active gateway to the commit: the gateway left active is
        always the one Telegram points at, and a bot has at most one. A gateway it replaces is
        deactivated, with an event in its owner's audit log. When anything fails after setWebhook,
        the webhook is pointed back at the gateway it served before, which stays active.

        The caller's own connected gateway of the bot whose token Telegram refused (or that has
        another token) is brought back instead, with the new token: see `_reconnected`.
        """
        token = token.strip()
        try:
            check_token_format(token)
        except MalformedToken as exc:
            raise _token_argument(exc) from None
        name = _checked_name(name)
        try:
            me = await self.api.get_me(token)
        except TokenRejected as exc:
            raise _token_argument(exc) from None
        bot_id, username = _storable_bot(me)
        allowed_updates = await self.registration.allowed_updates_for(ctx.user_id)
        gateway_id, secret = new_id(), new_secret()
        switch = _WebhookSwitch(self.registration, token, allowed_updates)
        try:
            async with in_transaction() as connection:
                await serialize(connection, _bot_lock(bot_id))
                active = await Gateway.filter(bot_id=bot_id, is_active=True).order_by("-created_at")
                if back := _reconnected(ctx, active, token):
                    gateway_id, secret = back.id, _secret_or_new(back)
                    active = [g for g in active if g.id != back.id]  # others (none, by the lock) retire
                try:
                    # A failure after setWebhook points it back at the gateway that served the bot
                    # before; a reconnected gateway whose token was refused served none: deleted.
                    served = back if back and back.status in gateway_status.WORKING_STATUSES else None
                    await switch.to(gateway_id, secret, served if back else (active[0] if active else None))
                    if back:
                        gateway = await _bring_back(
                            ctx, back, token, secret, name, username, allowed_updates, self.registration.delivery
                        )
                    else:
                        sealed: dict[str, Any] = {
                            **sealed_token(gateway_id, token),
                            **sealed_secret(gateway_id, secret),
                        }
                        gateway = await Gateway.create(
                            id=gateway_id,
                            owner_id=ctx.user_id,
                            type=GatewayType.TELEGRAM_BOT,
                            name=name or f"@{username}",
                            **sealed,
                            bot_id=bot_id,
                            bot_username=username,
                            allowed_updates=allowed_updates,
                            delivery=self.registration.delivery,
                        )
                    await _retire(ctx, active, username)
                    metadata = {"type": gateway.type.value, **({"reconnected": True} if back else {})}
                    await audit.record(ctx, "gateway.connect", "gateway", gateway.id, metadata)
                    await self._changed([ctx.user_id] + [old.owner_id for old in active])
                except BaseException:
                    await switch.back()  # still holding the bot's lock
                    raise
        except BaseException:
            await switch.back()  # the commit failed
            raise
        for old in active:
            self.secrets.forget(old.id)  # this process refuses their updates at once
        if back:
            self.secrets.forget(back.id)  # and takes the reconnected one's at once
            old_token = token_of(back)
            if old_token is not None and old_token != token:
                await self.api.forget(old_token)
        # The connect's setWebhook asked for what the user's installs needed before: those that
        # waited for a bot run now, and may need more (a failure here is logged and repaired later).
        await self.registration.follow(ctx.user_id)
        return gateway

    async def disconnect(self, ctx: ServiceContext, gateway_id: str) -> bool:
        """Deactivates one of the caller's gateways and deletes its bot's webhook (a failure to
        delete it is logged: updates Telegram still sends are refused, the gateway being inactive)."""
        if not is_id(gateway_id):
            raise NotFound("No such gateway")
        gateway = await Gateway.get_or_none(id=gateway_id, owner_id=ctx.user_id, is_active=True)
        if gateway is None:
            raise NotFound("No such gateway")
        async with in_transaction() as connection:
            if gateway.bot_id is not None:
                await serialize(connection, _bot_lock(gateway.bot_id))
            if not await Gateway.filter(id=gateway.id, is_active=True).update(
                is_active=False,
                status=GatewayStatus.DISCONNECTED,
                status_reason="Disconnected by its owner",
                updated_at=timezone.now(),
            ):
                raise NotFound("No such gateway")  # deactivated meanwhile: disconnected, or the bot connected again
            await audit.record(ctx, "gateway.disconnect", "gateway", gateway.id)
            await self._changed([ctx.user_id])
            token = token_of(gateway)
            try:
                if token is not None:
                    await self.api.delete_webhook(token)
            except PlugboardError as exc:
                log.warning("deleteWebhook failed for gateway %s: %s", gateway.id, exc.message)
        self.secrets.forget(gateway.id)
        if token is not None:
            await self.api.forget(token)
        return True

    # --- using --------------------------------------------------------------------------------

    async def execute(
        self,
        owner_id: str,
        gateway_id: str,
        action: str,
        params: dict[str, Any],
        *,
        deadline: float | None = None,
        attempted: Callable[[], None] | None = None,
    ) -> Any:
        """Calls an action on one of the owner's active gateways, in its turn in the bot's send
        queue; a sent message becomes a `message_sent` event in the inbox.

        `deadline` (the running loop's clock) is when the caller gives up: a call whose turn would
        come later fails at once with `SendRateLimited`. Without one, the queue's longest wait holds.
        `attempted` is told of each call made to Telegram, retries included.
        """
        async with said_as_database_failure("gateway lookup"):
            gateway = await Gateway.get_or_none(id=gateway_id, owner_id=owner_id, is_active=True)
        if gateway is None:
            raise NotFound("No such active gateway")
        target = f"@{gateway.bot_username}" if gateway.bot_username else f"gateway {gateway.id}"
        if gateway.status == GatewayStatus.TOKEN_REJECTED:  # Telegram would answer 401 again
            raise TokenRejected(f"{target}: {gateway.status_reason or gateway_status.TOKEN_REJECTED_REASON}")
        light = action in LIGHT_ACTIONS
        if light:
            light_params = checked_params(action, params)
            chat_id = light_params["chat_id"]
        else:
            method = self.api.method(action, params)
            chat_id = getattr(method, "chat_id", None)
        try:
            token = gateway.token
        except SecretUnreadable as exc:
            raise await unreadable(gateway.id, exc, gateways_changed=self.gateways_changed) from None

        async def send() -> Any:
            if attempted is not None:
                attempted()
            if light:
                return await self.light_calls.call(token, action, light_params)
            return await self.api.send(token, method)

        try:
            result = await self.sends.send(
                gateway.bot_id if gateway.bot_id is not None else bot_id_of(token),
                chat_id,
                send,
                deadline=deadline,
                target=target,
            )
        except TokenRejected:
            await self.token_rejected(gateway.id, token)
            raise
        if not light:  # a light action sends no message
            await _record_sent(self.inbox, gateway, result)
        return result

    async def close(self) -> None:
        """Closes the Bot API sessions and the send limits' connection."""
        await asyncio.gather(self.api.close(), self.light_calls.close(), self.sends.close(), return_exceptions=True)


async def _bring_back(
    ctx: ServiceContext,
    gateway: Gateway,
    token: str,
    secret: str,
    name: str | None,
    username: str,
    allowed_updates: list[str],
    delivery: Delivery,
) -> Gateway:
    """The reconnect's write (under the bot's lock): the new token, ACTIVE, its reason cleared, and
    a `gateway.status` event when its status changes. Its id, secret, name (unless a new one is
    given) and everything that hangs off it stay."""
    current = await Gateway.select_for_update().get(id=gateway.id)  # after a status change racing it
    changes: dict[str, Any] = {
        **sealed_token(gateway.id, token),
        **sealed_secret(gateway.id, secret),
        "bot_username": username,
        "name": name or current.name,
        "status": GatewayStatus.ACTIVE,
        "status_reason": None,
        "allowed_updates": allowed_updates,
        "delivery": delivery,
        "is_active": True,
        "updated_at": timezone.now(),
    }
    await Gateway.filter(id=gateway.id).update(**changes)
    if current.status != GatewayStatus.ACTIVE:
        reason = "reconnected with a new token" if token_of(current) != token else "reconnected"
        await gateway_status.record_change(ctx.user_id, gateway.id, current.status, GatewayStatus.ACTIVE, reason)
    for field, value in changes.items():
        setattr(current, field, value)
    return current


async def _record_sent(inbox: InboxWriter, gateway: Gateway, result: Any) -> None:
    """A message the bot sent becomes a `message_sent` event in the inbox."""
    from aiogram.types import Message  # imported already: the call went through aiogram

    if not isinstance(result, Message):
        return
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
