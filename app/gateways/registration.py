"""A bot's registration with Telegram: the one place that decides what it must be, and applies it.

What a connected bot's registration must be (`wanted`) follows from the deployment and from its
owner's installs:

- how updates arrive: WEBHOOK (Telegram posts them to PUBLIC_URL/webhooks/telegram/{gateway}) or
  POLLING (no webhook: a poller of this deployment calls getUpdates), by TELEGRAM_DELIVERY
  (`delivery_mode`);
- which updates: the update types the owner's running installs handle, sorted (`allowed_updates_for`).

Telegram keeps only what the last setWebhook (or getUpdates) asked for, and never sends a type
left out. So the registration is applied again (`follow`) after every change that alters it:

- connect: after the connect's transaction, once the installs waiting for a bot are ACTIVE
  (the connect's own setWebhook asked for what was running before);
- install, uninstall, toggle and config change, which are also the changes that move an install
  to or from NEEDS_CONFIG or DISABLED (PluginService.installs_changed);
- a catalog upgrade that changes a plugin's events, or sends installs to NEEDS_CONFIG, happens at
  start-up (CatalogService.sync): the start-up check of app/gateways/monitor.py compares every bot with
  Telegram and repairs it. The circuit breaker changes nothing here: a FAILING install still runs
  (states.RUNNING_STATES), its events are skipped at routing.

A gateway row records what was last applied (`allowed_updates`, `delivery`). `follow` calls
Telegram only for a bot whose record differs from what it must be; a bot that Telegram cannot be
told about now keeps its record of what it asked, so the next change tries again, and the
monitor, which compares with what Telegram reports, repairs it. Changes of one bot's registration
run one at a time across processes (the bot's lock, as connects and disconnects take), and each
decides inside the lock, so the last to run applies the newest state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from app.db import serialize
from app.errors import PlugboardError
from app.gateways.models import Delivery, Gateway, GatewayStatus, same_token
from app.gateways.public_url import PORTS_IN_WORDS, public_url_problem
from app.gateways.sealed import unreadable
from app.gateways.telegram import TelegramApi, TokenRejected
from app.secrets_at_rest import SecretUnreadable
from app.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram/{gateway_id}"
WEBHOOK_ADVICE = "set TELEGRAM_DELIVERY=webhook and an HTTPS PUBLIC_URL for webhooks"
POLLING_NOTE = "polling suits development and small deployments; webhooks suit production"

UpdateTypesFor = Callable[[str], Awaitable[list[str]]]
TokenRejectedHook = Callable[[str, str], Awaitable[object]]


def webhook_url(public_url: str, gateway_id: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH.format(gateway_id=gateway_id)


def bot_lock(bot_id: int) -> str:
    """The `serialize` key of one bot: its connects, disconnects and registrations run one at a time."""
    return f"telegram-bot:{bot_id}"


def _why_unreachable(public_url: str) -> str:
    """Why Telegram cannot post to `public_url`, in a few words (public_url_problem found that it cannot)."""
    try:
        parts = urlsplit(public_url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme != "https":
        return "is not HTTPS"
    if port is not None and port not in (443, 80, 88, 8443):
        return f"uses port {port} (Telegram posts to {PORTS_IN_WORDS} only)"
    return f"names {parts.hostname}, which is not on the internet"


def delivery_mode(settings: Settings, subject: str | None = None) -> tuple[Delivery, str]:
    """How this deployment's bots get their updates, and why, in words (serve's start-up line).

    TELEGRAM_DELIVERY=webhook or polling decides; `auto` means webhooks when Telegram would accept
    PUBLIC_URL (public_url_problem finds nothing), else polling. `subject` names the address in
    the words (default: "PUBLIC_URL <url>")."""
    url = settings.public_url
    choice = settings.telegram_delivery.lower()
    posts = f"Telegram posts each bot's updates to {url.rstrip('/')}/webhooks/telegram/…"
    if choice == "webhook":
        return Delivery.WEBHOOK, f"webhooks: {posts} (TELEGRAM_DELIVERY=webhook)"
    if choice == "polling":
        return Delivery.POLLING, (
            f"polling: this server fetches each bot's updates with getUpdates (TELEGRAM_DELIVERY=polling); {POLLING_NOTE}"
        )
    if public_url_problem(url) is None:
        return Delivery.WEBHOOK, f"webhooks: {posts} (PUBLIC_URL is an HTTPS address Telegram posts to)"
    subject = subject or f"PUBLIC_URL {url}"
    return Delivery.POLLING, (
        f"polling: {subject} {_why_unreachable(url)}, so Telegram cannot post to it ({WEBHOOK_ADVICE}); {POLLING_NOTE}"
    )


@dataclass(frozen=True)
class Wanted:
    """What a bot's registration must be: a webhook at `url` (None: no webhook, the bot is polled)
    asking for `allowed_updates`."""

    delivery: Delivery
    url: str | None
    allowed_updates: list[str]


class Registration:
    def __init__(
        self,
        api: TelegramApi,
        settings: Settings,
        update_types_for: UpdateTypesFor,
        token_rejected: TokenRejectedHook | None = None,
    ) -> None:
        self.api = api
        self.public_url = settings.public_url
        self.delivery, self.why = delivery_mode(settings)
        # The update types a user's running installs handle (app.plugins.gateway_needs.update_types_for).
        self.update_types_for = update_types_for
        # Told (gateway id, token) when Telegram answers 401 for a bot (GatewayService.token_rejected).
        self.token_rejected = token_rejected

    def url_for(self, gateway_id: str) -> str | None:
        """The bot's webhook URL; None when the deployment polls."""
        return webhook_url(self.public_url, gateway_id) if self.delivery == Delivery.WEBHOOK else None

    async def allowed_updates_for(self, owner_id: str) -> list[str]:
        """The update types the owner's running installs need: what each of their bots asks for
        (setWebhook's allowed_updates, or getUpdates' when polled)."""
        return sorted(await self.update_types_for(owner_id))

    async def wanted(self, gateway: Gateway) -> Wanted:
        return Wanted(self.delivery, self.url_for(gateway.id), await self.allowed_updates_for(gateway.owner_id))

    async def register(self, token: str, gateway_id: str, secret: str, allowed_updates: list[str]) -> None:
        """Tells Telegram: a webhook to the gateway asking for `allowed_updates`, or, when the
        deployment polls, no webhook (the poller passes allowed_updates to getUpdates)."""
        url = self.url_for(gateway_id)
        if url is None:
            await self.api.delete_webhook(token)
        else:
            await self.api.set_webhook(token, url, secret, allowed_updates)

    async def follow(self, owner_id: str) -> None:
        """After a change of the owner's installs (or gateways): each of their connected bots
        whose record differs from what it must be is registered again. A failure is logged: the
        bot keeps its record of what it asked, and the next change or the monitor repairs it."""
        gateways = await Gateway.filter(owner_id=owner_id, is_active=True).exclude(status=GatewayStatus.TOKEN_REJECTED)
        for gateway in gateways:
            try:
                await self.apply(gateway.id)
            except Exception as exc:
                reason = exc.message if isinstance(exc, PlugboardError) else type(exc).__name__
                log.warning("gateway %s still asks Telegram for %s: %s", gateway.id, gateway.allowed_updates, reason)

    async def apply(self, gateway_id: str, *, force: bool = False) -> bool:
        """Registers one connected bot as it must be now, unless its record says it is already
        (`force`: even then, for a registration that drifted at Telegram's). Returns whether
        Telegram was told. Raises what the Bot API raised (after telling `token_rejected` of a 401)."""
        gateway = await Gateway.get_or_none(id=gateway_id, is_active=True)
        if gateway is None or gateway.bot_id is None:
            return False
        unreadable_error: SecretUnreadable | None = None
        token = ""
        try:
            async with in_transaction() as connection:
                await serialize(connection, bot_lock(gateway.bot_id))
                gateway = await Gateway.get_or_none(id=gateway_id, is_active=True)  # as it is now, under the lock
                if gateway is None or gateway.status == GatewayStatus.TOKEN_REJECTED:
                    return False  # disconnected or replaced meanwhile; a rejected token is told nothing
                wanted = await self.wanted(gateway)
                recorded = gateway.allowed_updates == wanted.allowed_updates and gateway.delivery == wanted.delivery
                if recorded and not force:
                    return False
                # A polled bot that is polled already: getUpdates passes allowed_updates with every
                # call, the record is enough. Anything else is told to Telegram.
                told = force or not (wanted.delivery == gateway.delivery == Delivery.POLLING)
                try:
                    token, secret = gateway.token, gateway.secret
                except SecretUnreadable as exc:
                    unreadable_error = exc
                    return False
                if told:
                    await self.register(token, gateway.id, secret, wanted.allowed_updates)
                await Gateway.filter(id=gateway.id, **same_token(token)).update(
                    allowed_updates=wanted.allowed_updates, delivery=wanted.delivery
                )
        except TokenRejected:
            if self.token_rejected is not None and gateway is not None:
                await self.token_rejected(gateway.id, token)  # after the lock's transaction
            raise
        finally:
            if unreadable_error is not None:
                await unreadable(gateway_id, unreadable_error)  # after the lock's transaction
        return told
