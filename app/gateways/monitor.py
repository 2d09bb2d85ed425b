"""Each connected bot checked against what Telegram reports: its registration repaired when it
drifted, its webhook's health recorded and shown as its status.

A round runs at start-up and then every GATEWAY_HEALTH_SECONDS, in exactly one process of the
deployment: the holder of the lease `gateway-health` (app/gateways/leases.py), which it renews
while it runs and gives back when it stops; another process takes over once it is gone. The
start-up round is what repairs a registration left behind while no process watched: a crash
between a change and its setWebhook, or a catalog upgrade that changed a plugin's events or sent
installs to NEEDS_CONFIG (CatalogService.sync runs at start-up, before the round). `check` is one bot's
check, also run at once by the `checkGateway` mutation.

With webhooks, a check calls getWebhookInfo and

- compares its url and allowed_updates with what the registration must be, and registers the bot
  again when they differ (someone else called setWebhook with the token; a setWebhook that failed),
  or when Telegram's last error says our server refused its secret;
- stores pending_updates, last_error_at, last_error_message and checked_at;
- sets WEBHOOK_FAILING when Telegram cannot deliver: a recent error (within GATEWAY_HEALTH_SECONDS,
  or since the previous check) while updates wait, or waiting updates that grew since the previous
  check; back to ACTIVE once healthy. An error with nothing waiting was followed by a delivery that
  worked: Telegram keeps reporting its last error long after it recovered.

A 401 is the token helper's (GatewayService.token_rejected); a network failure, a 5xx or a 429
changes nothing (logged, tried again next round). With polling, a round only moves bots that were
registered for webhooks over to polling; the poller reports their health.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from tortoise import timezone

from app.accounts.context import ServiceContext
from app.db_errors import describe, is_unavailable
from app.errors import GatewayUnreachable, NotFound, PlugboardError
from app.gateways import leases
from app.gateways.models import Delivery, Gateway, GatewayStatus, same_token
from app.gateways.registration import Registration, Wanted
from app.gateways.sealed import unreadable
from app.gateways.status import set_status
from app.gateways.telegram import CALL_TIMEOUT_SECONDS, TokenRejected
from app.ids import new_id
from app.logs import redact
from app.secrets_at_rest import SecretUnreadable
from app.supervision import Heartbeat, cancel, start_supervised

if TYPE_CHECKING:
    from aiogram.types import WebhookInfo

    from app.gateways.service import GatewayService

log = logging.getLogger(__name__)

LEASE = "gateway-health"
# The lease is renewed this often (at most), and lasts this many renewals: a holder that died is
# taken over within LEASE_RENEWALS x RENEW_SECONDS; one that stops gives it back at once.
RENEW_SECONDS = 5.0
LEASE_RENEWALS = 6
MISSED_BEATS = 3
QUIET_LOG_SECONDS = 30.0
MAX_REASON = 512  # the gateways.status_reason column
MAX_ERROR = 300  # the gateways.last_error_message column
# Telegram's words when our webhook answered 401 or 403: the secret it sends is not the gateway's.
SECRET_REFUSED = ("Wrong response from the webhook: 401", "Wrong response from the webhook: 403")


def _shown_url(url: str, token: str) -> str:
    """A webhook URL as it may be logged: someone else's may hold the token (many frameworks put it in the path)."""
    return redact(url.replace(token, "[redacted]")) if url else "none"


def _drift(info: WebhookInfo, wanted: Wanted, token: str) -> list[str]:
    """How Telegram's registration differs from what it must be, in words (empty: it does not)."""
    drift = []
    if (info.url or None) != wanted.url:
        drift.append(f"url {_shown_url(info.url, token)} (wanted {wanted.url or 'none: polling'})")
    asked = sorted(info.allowed_updates) if info.allowed_updates is not None else None
    if wanted.url is not None and asked != wanted.allowed_updates:
        drift.append(
            f"allowed_updates {asked if asked is not None else 'Telegram default'} (wanted {wanted.allowed_updates})"
        )
    return drift


def _updates(count: int) -> str:
    return f"{count} update{'' if count == 1 else 's'} wait{'s' if count == 1 else ''}"


class GatewayMonitor:
    def __init__(
        self,
        gateways: GatewayService,
        registration: Registration,
        interval_seconds: float,
        heartbeat_grace_seconds: float,
    ) -> None:
        self.gateways = gateways
        self.registration = registration
        self.api = registration.api
        self.interval = interval_seconds
        self.renew_seconds = min(interval_seconds, RENEW_SECONDS)
        self.lease_seconds = max(LEASE_RENEWALS * self.renew_seconds, 2 * CALL_TIMEOUT_SECONDS)
        self.holder = new_id()
        # A turn renews the lease, or checks one bot (getWebhookInfo, maybe setWebhook, each bounded).
        self.heartbeat = Heartbeat(
            "gateway-monitor", MISSED_BEATS * self.renew_seconds + 3 * CALL_TIMEOUT_SECONDS + heartbeat_grace_seconds
        )
        self._task: asyncio.Task[None] | None = None
        self._held = False
        self._renewed = float("-inf")  # time.monotonic() of the last renewal
        self._due = 0.0  # time.monotonic() when the next round is due, while holding the lease
        self._startup: list[str] | None = None  # the start-up round's bots, listed by start()
        self.rounds = 0  # rounds this process completed
        self.failed_turns = 0  # turns that failed (the database, mostly), since the start

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def holds_lease(self) -> bool:
        return self._held

    async def start(self) -> None:
        """Takes the lease if it is free and lists the bots of the start-up round (so the round
        is of the bots connected before this process started: later ones were registered by their
        connect), then checks them, and all bots every interval, in the background."""
        self.heartbeat.beat()
        try:
            if await self._renew():
                self._startup = await self._connected()
        except Exception as exc:  # the loop tries again
            log.warning("gateway health checks: the lease could not be taken at start-up: %s", describe(exc))
        self._task = start_supervised("gateway-monitor", self._run)

    async def stop(self) -> None:
        if self._task is None:
            return
        await cancel([self._task])
        self._task = None
        if self._held:
            self._held = False
            try:
                await leases.release(LEASE, self.holder)  # another process takes over at once
            except Exception as exc:
                log.warning("the gateway health lease was not given back (it runs out by itself): %s", describe(exc))

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures, logged_at = 0, float("-inf")
        while True:
            try:
                if await self._renew() and time.monotonic() >= self._due:
                    ids, self._startup = self._startup, None
                    await self.round(ids)
                    self.rounds += 1
                    self._due = time.monotonic() + self.interval
            except Exception as exc:
                failures += 1
                self.failed_turns += 1
                if time.monotonic() - logged_at >= QUIET_LOG_SECONDS:
                    logged_at = time.monotonic()
                    if is_unavailable(exc):
                        log.warning(
                            "gateway health check failed (%d times), database unavailable: %s", failures, describe(exc)
                        )
                    else:
                        log.error("gateway health check failed (%d times)", failures, exc_info=exc)
            else:
                self.heartbeat.beat()
                if failures:
                    log.warning("gateway health checks work again, after %d failures", failures)
                    failures, logged_at = 0, float("-inf")
            wait = self.renew_seconds
            if self._held:
                wait = max(0.0, min(wait, self._due - time.monotonic()))
            await asyncio.sleep(wait)

    async def _renew(self) -> bool:
        """Takes or renews the lease when a renewal is due; whether this process holds it."""
        if self._held and time.monotonic() - self._renewed < self.renew_seconds:
            return True
        started = time.monotonic()
        try:
            held = await leases.take(LEASE, self.holder, self.lease_seconds)
        except BaseException:
            self._held = False  # unknown: taken again (or not) on the next turn
            raise
        if held and not self._held:
            self._due = 0.0  # a new holder checks at once: the start-up round, or a takeover's
            log.info("gateway health checks run in this process (every %g s)", self.interval)
        self._held, self._renewed = held, started
        return held

    async def _connected(self) -> list[str]:
        """The connected bots whose token Telegram has not refused, oldest first."""
        ids = (
            await Gateway.filter(is_active=True)
            .exclude(status=GatewayStatus.TOKEN_REJECTED)
            .order_by("created_at")
            .values_list("id", flat=True)
        )
        return [str(gateway_id) for gateway_id in ids]

    async def round(self, ids: list[str] | None = None) -> int:
        """Checks the bots `ids` (default: every connected bot whose token Telegram has not
        refused); returns how many were checked. Stops early when the lease is lost."""
        checked = 0
        for gateway_id in await self._connected() if ids is None else ids:
            if not await self._renew():
                break
            await self.check(gateway_id)
            self.heartbeat.beat()
            checked += 1
        return checked

    # -- one bot -----------------------------------------------------------------------------

    async def check_for(self, ctx: ServiceContext, gateway_id: str) -> Gateway:
        """The `checkGateway` mutation: checks one of the caller's gateways now (a disconnected one
        has nothing to check) and returns it; NotFound for any other."""
        gateway = await Gateway.get_or_none(id=gateway_id, owner_id=ctx.user_id)
        if gateway is None:
            raise NotFound("No such gateway")
        if gateway.is_active:
            gateway = await self.check(gateway.id) or await Gateway.get(id=gateway.id)
        return gateway

    async def check(self, gateway_id: str) -> Gateway | None:
        """Checks one connected bot now (see the module's doc) and returns it as it is after;
        None when it is not connected."""
        gateway = await Gateway.get_or_none(id=gateway_id, is_active=True)
        if gateway is None:
            return None
        if gateway.status == GatewayStatus.TOKEN_REJECTED:
            return gateway  # nothing to ask Telegram until its owner reconnects it
        if self.registration.delivery == Delivery.POLLING:
            if gateway.delivery != Delivery.POLLING:
                await self._repair(gateway, ["delivery WEBHOOK (wanted POLLING)"])
        else:
            await self._check_webhook(gateway)
        return await Gateway.get_or_none(id=gateway_id)

    async def _check_webhook(self, gateway: Gateway) -> None:
        try:
            token = gateway.token
        except SecretUnreadable as exc:
            await unreadable(gateway.id, exc, gateways_changed=self.gateways.gateways_changed)
            return
        try:
            info = await self.api.get_webhook_info(token)
        except TokenRejected:
            await self.gateways.token_rejected(gateway.id, token)
            return
        except PlugboardError as exc:  # unreachable, 5xx, 429, or a refusal: nothing learnt
            level = logging.INFO if isinstance(exc, GatewayUnreachable) else logging.WARNING
            log.log(level, "gateway %s not checked: %s", gateway.id, exc.message)
            return
        now = timezone.now()
        wanted = await self.registration.wanted(gateway)
        drift = _drift(info, wanted, token)
        error_at = info.last_error_date
        window_start = now - timedelta(seconds=self.interval)
        if gateway.checked_at is not None:
            window_start = min(window_start, gateway.checked_at)
        window_start -= timedelta(seconds=1)  # Telegram's times are whole seconds
        recent_error = error_at is not None and error_at >= window_start and bool(info.last_error_message)
        message = " ".join((info.last_error_message or "").split())[:MAX_ERROR] or None
        if drift:
            await self._repair(gateway, drift)
        elif recent_error and message and message.startswith(SECRET_REFUSED):
            await self._repair(gateway, [f"the secret, as Telegram's last error says: {message}"])
        await Gateway.filter(id=gateway.id, is_active=True, **same_token(token)).update(
            pending_updates=info.pending_update_count,
            last_error_at=error_at,
            last_error_message=message,
            checked_at=now,
        )
        if any(part.startswith("url ") for part in drift):
            return  # Telegram's figures were about another address: judged at the next check
        pending = info.pending_update_count
        grew = gateway.pending_updates is not None and pending > gateway.pending_updates
        url = wanted.url or ""
        if recent_error and pending > 0:
            reason = (
                f"Telegram cannot deliver updates to {url}: {message}; {_updates(pending)}. "
                "Check that PUBLIC_URL reaches this server."
            )
        elif grew:
            reason = (
                f"Telegram is not delivering updates to {url}: {_updates(pending)}, up from "
                f"{gateway.pending_updates} at the last check. Check that PUBLIC_URL reaches this server."
            )
        else:
            if gateway.status in (GatewayStatus.WEBHOOK_FAILING, GatewayStatus.POLLING_CONFLICT):
                await set_status(
                    gateway.id, GatewayStatus.ACTIVE, None, gateways_changed=self.gateways.gateways_changed, token=token
                )
            return
        reason = reason[:MAX_REASON]
        if gateway.status == GatewayStatus.WEBHOOK_FAILING and gateway.last_error_message == message:
            # Still failing the same way: the reason's figures are brought up to date, no new event.
            await Gateway.filter(id=gateway.id, is_active=True, status=gateway.status, **same_token(token)).update(
                status_reason=reason
            )
            return
        await set_status(
            gateway.id,
            GatewayStatus.WEBHOOK_FAILING,
            reason,
            gateways_changed=self.gateways.gateways_changed,
            token=token,
        )

    async def _repair(self, gateway: Gateway, drift: list[str]) -> None:
        log.warning(
            "gateway %s: Telegram's registration drifted (%s); registering it again", gateway.id, "; ".join(drift)
        )
        try:
            await self.registration.apply(gateway.id, force=True)
        except TokenRejected:
            pass  # the registration told the token helper
        except PlugboardError as exc:
            log.warning("gateway %s could not be registered again: %s", gateway.id, exc.message)
