"""A gateway whose sealed token or secret does not open (app/secrets_at_rest.py).

A value sealed by a key this process lacks (SECRET_KEY changed under it, or another process
rotated to a key it was not given) says nothing about the gateway: it is logged, the gateway is
left as it is, and whatever needed it fails. A value that was altered, or copied from another row,
will never open: the gateway becomes TOKEN_REJECTED with a reason saying so, and its owner
connects the bot again (which seals a new token and secret for it).
"""

from __future__ import annotations

import logging

from app.errors import ErrorCode, PlugboardError
from app.gateways.models import GatewayStatus
from app.gateways.status import GatewaysChanged, set_status
from app.secrets_at_rest import SecretUnreadable

log = logging.getLogger(__name__)

UNREADABLE_REASON = (
    "The bot's stored token or webhook secret cannot be decrypted (it was altered in the database): "
    "connect the bot again with its token"
)


class GatewaySecretUnreadable(PlugboardError):
    code = ErrorCode.SECRET_UNREADABLE


async def unreadable(
    gateway_id: str, exc: SecretUnreadable, *, gateways_changed: GatewaysChanged | None = None
) -> GatewaySecretUnreadable:
    """Logs the failure, marks a tampered gateway, and returns the error to raise to a caller."""
    if exc.unknown_key:
        log.error("gateway %s: %s; check SECRET_KEY / SECRET_KEYS", gateway_id, exc)
        return GatewaySecretUnreadable("The gateway's secrets cannot be decrypted with this server's SECRET_KEY")
    log.error("gateway %s: %s", gateway_id, exc)
    await set_status(gateway_id, GatewayStatus.TOKEN_REJECTED, UNREADABLE_REASON, gateways_changed=gateways_changed)
    return GatewaySecretUnreadable(UNREADABLE_REASON)
