"""Connecting bots, installing plugins and sending webhooks the way Telegram and users do."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.accounts.context import ServiceContext
from app.accounts.models import Plan, User
from app.gateways.models import EventStatus, GatewayEvent
from app.plugins.contract import InstallRequest
from app.plugins.models import Plugin, StoredValue, UserPlugin
from tests.fakes.telegram import UPDATE_TYPES, FakeTelegram
from tests.support.eventually import DEADLINE_SECONDS, eventually
from tests.support.live import LiveApp, TestUser

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class ConnectedBot:
    gateway_id: str
    token: str
    secret: str
    # The fake Telegram the bot lives in: `deliver` posts only what it would send the bot.
    telegram: FakeTelegram | None = None

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/telegram/{self.gateway_id}"


async def service_context(app: LiveApp, user: TestUser) -> ServiceContext:
    with app.db():
        row = await User.get(id=user.id)
    return ServiceContext(user_id=row.id, plan=Plan(row.plan))


async def connect_bot(app: LiveApp, user: TestUser, telegram: FakeTelegram, username: str = "test_bot") -> ConnectedBot:
    token = f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(30)}"
    telegram.add_bot(token, username)
    ctx = await service_context(app, user)
    with app.db():
        gateway = await app.platform.gateways.connect_telegram_bot(ctx, token)
    secret = telegram.bot(token).secret_token  # what Telegram will send with every update
    assert secret
    return ConnectedBot(gateway_id=gateway.id, token=token, secret=secret, telegram=telegram)


async def install(app: LiveApp, user: TestUser, slug: str, config: dict[str, Any] | None = None) -> UserPlugin:
    ctx = await service_context(app, user)
    with app.db():
        plugin = await Plugin.get(slug=slug)
        return await app.platform.plugins.install(ctx, InstallRequest(plugin_id=plugin.id, config=config))


async def deliver(
    app: LiveApp, bot: ConnectedBot, update: dict[str, Any], secret: str | None = None, *, lenient: bool = False
) -> httpx.Response:
    """Posts `update` to the bot's webhook as Telegram does. Telegram never sends a kind of update
    the bot did not ask for (its registration's allowed_updates): such an update fails the test,
    unless it says `lenient=True` because it posts what Telegram would not (a hostile sender)."""
    assert app.http is not None
    if not lenient and bot.telegram is not None and (fake := bot.telegram.bots.get(bot.token)) is not None:
        kind = next((key for key in update if key != "update_id"), None)
        if kind in UPDATE_TYPES:
            assert kind in fake.allowed_types, (
                f"Telegram would not send a {kind} update to this bot: it asked for {sorted(fake.allowed_types)}"
            )
    return await app.http.post(
        bot.webhook_path, json=update, headers={SECRET_HEADER: bot.secret if secret is None else secret}
    )


async def wait_until_processed(app: LiveApp, deadline_seconds: float = DEADLINE_SECONDS) -> None:
    """Waits until no event is pending or in progress (fails after the deadline)."""

    async def none_open() -> bool:
        with app.db():
            return not await GatewayEvent.filter(status__in=[EventStatus.PENDING, EventStatus.PROCESSING]).exists()

    await eventually(none_open, "every event processed", timeout=deadline_seconds)


async def next_scheduler_minute(app: LiveApp) -> None:
    """What the scheduler (off in tests) does in its next minute: every schedule due then fires,
    the analytics `member-reads` among them. A minute after the last one fired here, or now."""
    app.scheduled_at = max(time.time(), app.scheduled_at + 60)
    with app.db():
        await app.platform.scheduler.fire_due(app.scheduled_at)


async def stored(app: LiveApp, install_id: str, key: str) -> Any:
    with app.db():
        row = await StoredValue.get_or_none(install_id=install_id, key=key)
    return None if row is None else row.value


async def reload(app: LiveApp, install: UserPlugin) -> UserPlugin:
    with app.db():
        return await UserPlugin.get(id=install.id)


async def analytics_counts(app: LiveApp, install_id: str, chat_id: int) -> dict[str, int] | None:
    """What Channel Analytics counted for one chat (None before anything was): lifetime messages
    received and sent, and distinct users over the days it keeps."""
    from app.analytics.models import AnalyticsChat, AnalyticsUserDay

    with app.db():
        chat = await AnalyticsChat.get_or_none(install_id=install_id, chat_id=chat_id)
        if chat is None:
            return None
        users = (
            await AnalyticsUserDay.filter(install_id=install_id, chat_id=chat_id)
            .distinct()
            .values_list("user_id", flat=True)
        )
    return {
        "received": chat.received,
        "sent": chat.sent,
        "messages": chat.received + chat.sent,
        "users": len(set(users)),
    }


async def messages_counted(app: LiveApp, install_id: str, chat_id: int) -> int | None:
    counts = await analytics_counts(app, install_id, chat_id)
    return None if counts is None else counts["messages"]
