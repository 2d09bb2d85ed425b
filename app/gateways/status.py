"""A gateway's status: the one place it changes.

Each change is a conditional write (nothing happens when the gateway already has that status and
reason, or is no longer connected), an audit event `gateway.status` in its owner's log, and a
notice to the installs that depend on the gateway (a bot whose token Telegram rejects runs no
plugin: its installs wait for a gateway, with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import timezone
from tortoise.transactions import in_transaction

from app.audit import writes as audit
from app.gateways.models import Gateway, GatewayStatus
from app.gateways.models import same_token as gateway_same_token

log = logging.getLogger(__name__)

# The statuses in which a gateway delivers updates and runs its owner's plugins.
WORKING_STATUSES = (GatewayStatus.ACTIVE, GatewayStatus.WEBHOOK_FAILING, GatewayStatus.POLLING_CONFLICT)

TOKEN_REJECTED_REASON = (
    "Telegram refused this bot's token: it was revoked in @BotFather, or the bot was deleted. "
    "Reconnect the bot with its new token."
)

GatewaysChanged = Callable[[str], Awaitable[None]]


async def set_status(
    gateway_id: str,
    status: GatewayStatus,
    reason: str | None = None,
    *,
    gateways_changed: GatewaysChanged | None = None,
    token: str | None = None,
) -> bool:
    """Moves a connected gateway to `status` with `reason`; returns whether it changed.

    `gateways_changed(owner_id)` is called in the same transaction when the change starts or stops
    the gateway working (to or from TOKEN_REJECTED), so that its owner's installs follow.
    With `token`, the change happens only while the gateway still has that bot token: what Telegram
    said about a token says nothing about the new one a reconnect put in its place meanwhile.
    """
    if status == GatewayStatus.DISCONNECTED:
        raise ValueError("a gateway is disconnected by deactivating it, not by set_status")
    same_token: dict[str, Any] = {} if token is None else gateway_same_token(token)
    async with in_transaction():
        gateway = await Gateway.get_or_none(id=gateway_id, is_active=True, **same_token)
        if gateway is None or (gateway.status, gateway.status_reason) == (status, reason):
            return False
        changed = await Gateway.filter(id=gateway_id, is_active=True, status=gateway.status, **same_token).update(
            status=status, status_reason=reason, updated_at=timezone.now()
        )
        if not changed:
            return False  # another process changed it first, and recorded it
        await record_change(gateway.owner_id, gateway.id, gateway.status, status, reason)
        working_before = gateway.status in WORKING_STATUSES
        if gateways_changed is not None and working_before != (status in WORKING_STATUSES):
            await gateways_changed(gateway.owner_id)
    log.info("gateway %s is now %s%s", gateway_id, status.value, f": {reason}" if reason else "")
    return True


async def record_change(
    owner_id: str, gateway_id: str, before: GatewayStatus, after: GatewayStatus, reason: str | None
) -> None:
    """The audit event `gateway.status` of a change (set_status's, or a reconnect's)."""
    metadata = {"from": before.value, "to": after.value, **({"reason": reason} if reason else {})}
    await audit.record_for(owner_id, "gateway.status", "gateway", gateway_id, metadata)


async def token_rejected(gateway_id: str, token: str, *, gateways_changed: GatewaysChanged | None = None) -> bool:
    """Telegram answered 401 (or 404) to a call made with `token` for this gateway: it becomes
    TOKEN_REJECTED with TOKEN_REJECTED_REASON, once, unless a reconnect replaced the token meanwhile.

    Callers in a running platform use `GatewayService.token_rejected(gateway_id, token)`, which
    passes the installs' callback and forgets the webhook secret this process cached.
    """
    return await set_status(
        gateway_id, GatewayStatus.TOKEN_REJECTED, TOKEN_REJECTED_REASON, gateways_changed=gateways_changed, token=token
    )
