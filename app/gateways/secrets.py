"""Webhook secrets of working gateways, cached briefly so each update costs no extra query.

Only gateways found connected and working (is_active, a status in WORKING_STATUSES) are cached,
never a miss, so a gateway connected or reconnected in another process is seen at once. A gateway
deactivated elsewhere, or whose token Telegram refused there, may have updates accepted for up to
`ttl` seconds more; the router checks the gateway again before anything runs, so they are dropped
there. The process that changes a gateway forgets its entry at once.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from app.gateways.models import Gateway, secret_place
from app.gateways.status import WORKING_STATUSES
from app.secrets_at_rest import SecretUnreadable, open_sealed

log = logging.getLogger(__name__)


class GatewaySecrets:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._cache: dict[str, tuple[str, float]] = {}

    async def secret_of(self, gateway_id: str) -> str | None:
        """The webhook secret of a connected, working gateway, or None (its webhook answers 401)."""
        now = time.monotonic()
        cached = self._cache.get(gateway_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        working = Gateway.filter(id=gateway_id, is_active=True, status__in=WORKING_STATUSES)
        rows = cast("list[str]", await working.values_list("webhook_secret", flat=True))
        if not rows:
            self._cache.pop(gateway_id, None)
            return None
        try:
            secret = open_sealed(rows[0], secret_place(gateway_id))
        except SecretUnreadable as exc:  # its webhook answers 401 until it is connected again
            self._cache.pop(gateway_id, None)
            log.error("gateway %s: %s", gateway_id, exc)
            return None
        if self.ttl_seconds > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[gateway_id] = (secret, now + self.ttl_seconds)
        return secret

    def forget(self, gateway_id: str) -> None:
        self._cache.pop(gateway_id, None)
