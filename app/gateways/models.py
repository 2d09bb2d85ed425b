from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app import secrets_at_rest as at_rest
from app.ids import new_id

if TYPE_CHECKING:
    from app.accounts.models import User


class GatewayType(str, Enum):
    TELEGRAM_BOT = "TELEGRAM_BOT"


class GatewayStatus(str, Enum):
    ACTIVE = "ACTIVE"  # Telegram accepts the token and delivers updates
    TOKEN_REJECTED = "TOKEN_REJECTED"  # Telegram answered 401: the token was revoked, or the bot deleted
    WEBHOOK_FAILING = "WEBHOOK_FAILING"  # Telegram reports that it cannot deliver to the webhook
    POLLING_CONFLICT = "POLLING_CONFLICT"  # getUpdates answered 409: a webhook or another poller elsewhere
    DISCONNECTED = "DISCONNECTED"  # disconnected by its owner, or replaced by a newer connect of the bot


class Delivery(str, Enum):
    WEBHOOK = "WEBHOOK"  # Telegram posts updates to PUBLIC_URL
    POLLING = "POLLING"  # a process of this deployment long-polls getUpdates


class Gateway(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "plugboard.User", related_name="gateways", on_delete=fields.CASCADE, db_index=True
    )
    owner_id: str
    type = fields.CharEnumField(GatewayType, max_length=32)
    name = fields.CharField(max_length=128)
    # Sealed (app/secrets_at_rest.py): read `token` and `secret`, write with `sealed_token()` and
    # `sealed_secret()`. A gateway is found by its token through `bot_token_hash` (lookup_hashes).
    bot_token = fields.CharField(max_length=256)
    bot_token_hash = fields.CharField(max_length=64, null=True, db_index=True)
    bot_id = fields.BigIntField(null=True, db_index=True)
    bot_username = fields.CharField(max_length=64, null=True)
    webhook_secret = fields.CharField(max_length=256)
    # The update types the bot's webhook asks Telegram for: those its owner's plugins handle.
    allowed_updates: fields.JSONField[list[str] | None] = fields.JSONField(null=True)
    is_active = fields.BooleanField(default=True, db_default=True)
    # Health, as Telegram last showed it: a connected gateway (is_active) may be TOKEN_REJECTED,
    # WEBHOOK_FAILING or POLLING_CONFLICT; one that is not active is DISCONNECTED.
    status = fields.CharEnumField(GatewayStatus, max_length=32, default=GatewayStatus.ACTIVE, db_default="ACTIVE")
    status_reason = fields.CharField(max_length=512, null=True)
    delivery = fields.CharEnumField(Delivery, max_length=16, default=Delivery.WEBHOOK, db_default="WEBHOOK")
    # From getWebhookInfo at `checked_at` (webhook delivery only).
    pending_updates = fields.IntField(null=True)
    last_error_at = fields.DatetimeField(null=True)
    last_error_message = fields.CharField(max_length=300, null=True)
    checked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "gateways"

    def __repr__(self) -> str:  # never show the token or the secret
        return f"<Gateway {self.id} {self.type} active={self.is_active}>"

    @property
    def token(self) -> str:
        """The bot token, opened (raises SecretUnreadable)."""
        return at_rest.open_sealed(self.bot_token, token_place(self.id))

    @property
    def secret(self) -> str:
        """The webhook secret, opened (raises SecretUnreadable)."""
        return at_rest.open_sealed(self.webhook_secret, secret_place(self.id))

    __str__ = __repr__


def token_place(gateway_id: str) -> at_rest.Place:
    return at_rest.Place("gateways", gateway_id, "bot_token")


def secret_place(gateway_id: str) -> at_rest.Place:
    return at_rest.Place("gateways", gateway_id, "webhook_secret")


def sealed_token(gateway_id: str, token: str) -> dict[str, str]:
    """The columns that store `token` for this gateway: sealed, and its lookup hash."""
    return {"bot_token": at_rest.seal(token, token_place(gateway_id)), "bot_token_hash": at_rest.lookup_hash(token)}


def sealed_secret(gateway_id: str, secret: str) -> dict[str, str]:
    return {"webhook_secret": at_rest.seal(secret, secret_place(gateway_id))}


def new_gateway_columns(token: str, secret: str) -> dict[str, Any]:
    """A new gateway's id with its token and webhook secret sealed for it (Gateway.create(**…))."""
    gateway_id = new_id()
    return {"id": gateway_id, **sealed_token(gateway_id, token), **sealed_secret(gateway_id, secret)}


def same_token(token: str) -> dict[str, list[str]]:
    """A filter: the gateways whose token is `token` (by its lookup hash under any key)."""
    return {"bot_token_hash__in": at_rest.lookup_hashes(token)}


class EventStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class EventKind(str, Enum):
    UPDATE = "update"  # a Telegram update taken by the webhook
    MESSAGE_SENT = "message_sent"  # a message the bot sent through the gateway


class GatewayEvent(Model):
    # An event committed before it is acknowledged, then processed once by some process.
    #
    # `key` deduplicates redeliveries: the update_id for updates, chat:message_id for sent messages.

    id = fields.BigIntField(primary_key=True)
    gateway: fields.ForeignKeyRelation[Gateway] = fields.ForeignKeyField(
        "plugboard.Gateway", related_name="events", on_delete=fields.CASCADE
    )
    gateway_id: str
    kind = fields.CharEnumField(EventKind, max_length=16)
    key = fields.CharField(max_length=64)
    chat_id = fields.BigIntField(null=True)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    status = fields.CharEnumField(EventStatus, max_length=16, default=EventStatus.PENDING)
    attempts = fields.IntField(default=0)
    claim = fields.CharField(max_length=32, null=True)
    lease_until = fields.DatetimeField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True)
    processed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "gateway_events"
        unique_together = (("gateway", "kind", "key"),)
        indexes = (("status", "id"),)


class RejectedUpdate(Model):
    # An update acknowledged to Telegram (so it stops resending it) but never stored as an event,
    # because it holds what no column can take (a NUL, an unpaired surrogate, an integer beyond
    # 64 bits) or the database refused it. Kept for the operator; never processed.

    id = fields.BigIntField(primary_key=True)
    gateway: fields.ForeignKeyRelation[Gateway] = fields.ForeignKeyField(
        "plugboard.Gateway", related_name="rejected_updates", on_delete=fields.CASCADE
    )
    gateway_id: str
    update_id = fields.TextField(null=True)  # as sent, in decimal; it may not fit in 64 bits
    reason = fields.CharField(max_length=255)
    body = fields.BinaryField()  # the request body, byte for byte
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rejected_updates"


class SendLimit(Model):
    # The next free time of one send-rate key, shared by every process that sends for a bot:
    # `bot:{bot_id}` (all its sends), `chat:{bot_id}:{chat_id}` (one chat), `group:{bot_id}:{chat_id}`
    # (one group's minute budget) and `pause:{bot_id}` (a 429's retry_after). `free_at` is a GCRA
    # "theoretical arrival time" in seconds since the epoch, by the database's clock. A row whose
    # time has passed means the same as no row; old rows are pruned.

    key = fields.CharField(primary_key=True, max_length=96)
    free_at = fields.FloatField()

    class Meta:
        table = "send_limits"


class Lease(Model):
    # Work that exactly one process does at a time, across every process on one database: polling
    # one bot (`poll:{bot_id}`), the gateways' health checks (`gateway-health`). A holder
    # renews its lease well before `until`; a lease whose time has passed may be taken by another.

    name = fields.CharField(primary_key=True, max_length=96)
    holder = fields.CharField(max_length=64)
    until = fields.DatetimeField()

    class Meta:
        table = "leases"
