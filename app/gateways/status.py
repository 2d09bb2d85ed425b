"""A gateway's status: the one place it changes.

Each change is a conditional write (nothing happens when the gateway already has that status and
reason, or is no longer connected), an audit event `gateway.status` in its owner's log, and a
notice to the installs that depend on the gateway (a bot whose token Telegram rejects runs no
plugin: its installs wait for a gateway, with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tortoise import timezone
from tortoise.transactions import in_transaction

from app.audit import service as audit
from app.gateways.models import Gateway, GatewayStatus

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
) -> bool:
    """Moves a connected gateway to `status` with `reason`; returns whether it changed.

    `gateways_changed(owner_id)` is called in the same transaction when the change starts or stops
    the gateway working (to or from TOKEN_REJECTED), so that its owner's installs follow.
    """
    if status == GatewayStatus.DISCONNECTED:
        raise ValueError("a gateway is disconnected by deactivating it, not by set_status")
    async with in_transaction():
        gateway = await Gateway.get_or_none(id=gateway_id, is_active=True)
        if gateway is None or (gateway.status, gateway.status_reason) == (status, reason):
            return False
        changed = await Gateway.filter(id=gateway_id, is_active=True, status=gateway.status).update(
            status=status, status_reason=reason, updated_at=timezone.now()
        )
        if not changed:
            return False  # another process changed it first, and recorded it
        metadata = {"from": gateway.status.value, "to": status.value, **({"reason": reason} if reason else {})}
        await audit.record_for(gateway.owner_id, "gateway.status", "gateway", gateway.id, metadata)
        working_before = gateway.status in WORKING_STATUSES
        if gateways_changed is not None and working_before != (status in WORKING_STATUSES):
            await gateways_changed(gateway.owner_id)
    log.info("gateway %s is now %s%s", gateway_id, status.value, f": {reason}" if reason else "")
    return True
