"""A bot's registration (app/gateways/registration.py) follows what its owner's running installs
need after every change, and the updates Telegram then sends (through the strict fake, which
filters by the registration) reach the plugins: install first and connect second included."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.analytics.models import AnalyticsChat
from app.gateways.models import Delivery, Gateway
from app.gateways.registration import delivery_mode
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from app.settings import Settings
from tests.fakes.telegram import FakeTelegram
from tests.support.eventually import eventually
from tests.support.installs_api import install_via_api, my_install, toggle, update_config
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import ConnectedBot, connect_bot, service_context, wait_until_processed
from tests.support.telegram_updates import (
    channel_post_update,
    chat_member,
    chat_member_update,
)

PUBLIC = "https://plugboard.example"
# Channel Analytics: messages, posts, joins and leaves, and the bot added or removed (member counts)
ANALYTICS_TYPES = ["channel_post", "chat_member", "message", "my_chat_member"]
WELCOME_TYPES = ["channel_post", "message"]  # messages, in groups and channels
MINIMAL = ["message"]  # what a bot asks for when no install runs (Telegram's minimum that is not its default)
GROUP, CHANNEL = -100200, -100300


def asked(telegram: FakeTelegram, token: str) -> list[str]:
    """What the bot's registration lets through, as the fake (and Telegram) holds it."""
    return sorted(telegram.bot(token).allowed_types)


async def recorded(app: LiveApp, gateway_id: str) -> tuple[list[str] | None, Delivery]:
    with app.db():
        gateway = await Gateway.get(id=gateway_id)
    return gateway.allowed_updates, gateway.delivery


def set_webhooks(telegram: FakeTelegram, since: int = 0) -> int:
    return telegram.methods_called()[since:].count("setWebhook")


async def chat_counts(app: LiveApp, install_id: str, chat_id: int) -> dict[str, int] | None:
    with app.db():
        row = await AnalyticsChat.get_or_none(install_id=install_id, chat_id=chat_id)
    return None if row is None else {"received": row.received, "joins": row.joins, "leaves": row.leaves}


# --- install first, connect second ---------------------------------------------------------------


async def test_install_first_then_connect_asks_for_every_type_and_joins_and_channel_posts_are_counted(
    app, user, telegram
):
    installed = await install_via_api(app, user, "analytics")
    assert installed["status"] == "WAITING_FOR_GATEWAY"

    bot = await connect_bot(app, user, telegram)

    assert (await my_install(app, user, "analytics"))["status"] == "ACTIVE"
    assert asked(telegram, bot.token) == ANALYTICS_TYPES
    assert telegram.bot(bot.token).webhook_url == f"{PUBLIC}/webhooks/telegram/{bot.gateway_id}"
    assert await recorded(app, bot.gateway_id) == (ANALYTICS_TYPES, Delivery.WEBHOOK)

    telegram.route_webhooks(PUBLIC, to=app.url)
    joined = await telegram.deliver(
        bot.token, chat_member_update(1, chat_member("left"), chat_member("member"), chat_id=GROUP)
    )
    posted = await telegram.deliver(bot.token, channel_post_update(2, chat_id=CHANNEL))
    assert (joined.status, posted.status) == ("delivered", "delivered")
    await wait_until_processed(app)

    counts = await chat_counts(app, installed["id"], GROUP)
    assert counts is not None and counts["joins"] == 1
    counts = await chat_counts(app, installed["id"], CHANNEL)
    assert counts is not None and counts["received"] == 1


async def test_what_no_running_install_handles_is_filtered_by_telegram(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    assert asked(telegram, bot.token) == MINIMAL
    telegram.route_webhooks(PUBLIC, to=app.url)
    filtered = await telegram.deliver(bot.token, chat_member_update(1, chat_member("left"), chat_member("member")))
    assert filtered.status == "filtered"  # what the fake did for every such update before the fix


# --- every change that alters it ----------------------------------------------------------------


async def test_each_change_of_the_installs_updates_the_registration_and_only_those(app, pro_user, telegram):
    user = pro_user
    bot = await connect_bot(app, user, telegram)
    assert asked(telegram, bot.token) == MINIMAL

    await install_via_api(app, user, "welcome")
    assert asked(telegram, bot.token) == WELCOME_TYPES
    calls = len(telegram.calls)
    await install_via_api(app, user, "analytics")
    assert asked(telegram, bot.token) == ANALYTICS_TYPES
    assert set_webhooks(telegram, calls) == 1

    calls = len(telegram.calls)
    await update_config(app, user, "analytics", {"retention": 60})  # still running: the same types
    assert set_webhooks(telegram, calls) == 0

    await toggle(app, user, "analytics", False)
    assert asked(telegram, bot.token) == WELCOME_TYPES
    await toggle(app, user, "analytics", True)
    assert asked(telegram, bot.token) == ANALYTICS_TYPES

    analytics = await my_install(app, user, "analytics")
    await app.graphql(
        "mutation($id: ID!) { uninstallPlugin(pluginId: $id) }", {"id": analytics["plugin"]["id"]}, user=user
    )
    assert asked(telegram, bot.token) == WELCOME_TYPES
    await toggle(app, user, "welcome", False)
    assert asked(telegram, bot.token) == MINIMAL
    assert await recorded(app, bot.gateway_id) == (MINIMAL, Delivery.WEBHOOK)


class AnalyticsV2(AnalyticsHandler):
    """Caps the retention at 90 days: an install kept for 365 needs its config changed."""

    schema: dict[str, Any] = {
        **AnalyticsHandler.definition.config_schema,
        "properties": {
            **AnalyticsHandler.definition.config_schema["properties"],
            "retention": {**AnalyticsHandler.definition.config_schema["properties"]["retention"], "maximum": 90},
        },
    }
    definition = replace(AnalyticsHandler.definition, version="2.0.0", config_schema=schema)


async def test_an_upgrade_that_sends_an_install_to_needs_config_is_repaired_at_start_up_and_its_fix_too(
    make_app, telegram
):
    v1 = await make_app(handlers=[AnalyticsHandler(), WelcomeHandler()])
    owner = await v1.create_user("keeper@example.com", "pro")
    bot = await connect_bot(v1, owner, telegram)
    await install_via_api(v1, owner, "analytics", {"retention": 365})
    assert asked(telegram, bot.token) == ANALYTICS_TYPES
    await v1.stop()

    # The catalog sync of v2's start-up sends the install to NEEDS_CONFIG; its start-up round sees
    # Telegram still asked for what analytics needed and registers the bot again.
    v2 = await make_app(handlers=[AnalyticsV2(), WelcomeHandler()])
    assert (await my_install(v2, owner, "analytics"))["status"] == "NEEDS_CONFIG"
    await eventually(lambda: asked(telegram, bot.token) == MINIMAL, "the registration without analytics' types")

    fixed = await update_config(v2, owner, "analytics", {"retention": 90})
    assert fixed["status"] == "ACTIVE"
    assert asked(telegram, bot.token) == ANALYTICS_TYPES


# --- a registration Telegram was not told about --------------------------------------------------


async def test_a_failed_set_webhook_leaves_the_install_done_and_the_next_monitor_round_repairs_it(make_app, telegram):
    api = await make_app(inbox_concurrency=0)  # no worker here, so no monitor: nothing repairs it yet
    user = await api.create_user("crash@example.com")
    bot = await connect_bot(api, user, telegram)

    telegram.fail_next("setWebhook")  # a 500, as a crash between the change and setWebhook leaves it
    installed = await install_via_api(api, user, "analytics")

    assert installed["status"] == "ACTIVE"
    assert asked(telegram, bot.token) == MINIMAL
    assert await recorded(api, bot.gateway_id) == (MINIMAL, Delivery.WEBHOOK)  # the record says what it asked

    await make_app(gateway_health_seconds=0.2)  # a worker: its monitor's first round
    await eventually(lambda: asked(telegram, bot.token) == ANALYTICS_TYPES, "the registration repaired")

    # The record is written after Telegram answered: wait for it too.
    async def record_repaired() -> bool:
        return await recorded(api, bot.gateway_id) == (ANALYTICS_TYPES, Delivery.WEBHOOK)

    await eventually(record_repaired, "the record repaired")


async def test_someone_elses_set_webhook_is_repaired_by_check_gateway(app, user, telegram, caplog):
    await install_via_api(app, user, "analytics")
    bot = await connect_bot(app, user, telegram)
    async with httpx.AsyncClient() as http:  # another program with the same token
        answer = await http.post(
            f"{telegram.url}/bot{bot.token}/setWebhook",
            json={"url": f"https://elsewhere.example/bot{bot.token}", "allowed_updates": ["message", "poll"]},
        )
    assert answer.json()["ok"] is True

    data = await app.graphql(
        "mutation($id: ID!) { checkGateway(gatewayId: $id) { id status isActive } }", {"id": bot.gateway_id}, user=user
    )

    assert data["checkGateway"] == {"id": bot.gateway_id, "status": "ACTIVE", "isActive": True}
    fake = telegram.bot(bot.token)
    assert fake.webhook_url == f"{PUBLIC}/webhooks/telegram/{bot.gateway_id}"
    assert fake.secret_token == bot.secret
    assert asked(telegram, bot.token) == ANALYTICS_TYPES
    [warning] = [r for r in caplog.records if "drifted" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert "https://elsewhere.example/" in warning.getMessage()
    for record in caplog.records:
        assert bot.token not in record.getMessage() and bot.token.split(":")[1] not in record.getMessage()
        assert bot.secret not in record.getMessage()


# --- polling ------------------------------------------------------------------------------------


async def connect_polled(app: LiveApp, user: TestUser, telegram: FakeTelegram) -> ConnectedBot:
    """connect_bot for a deployment that polls: Telegram gets no webhook, so no secret."""
    token = f"{secrets.randbelow(10**9) + 1}:{secrets.token_urlsafe(30)}"
    telegram.add_bot(token, "polled_bot")
    ctx = await service_context(app, user)
    with app.db():
        gateway = await app.platform.gateways.connect_telegram_bot(ctx, token)
    return ConnectedBot(gateway_id=gateway.id, token=token, secret=gateway.secret)


async def test_a_polled_bot_has_no_webhook_and_its_record_follows_the_installs(make_app, telegram):
    app = await make_app(telegram_delivery="polling")
    user = await app.create_user("laptop@example.com")
    bot = await connect_polled(app, user, telegram)
    assert telegram.bot(bot.token).webhook_url is None
    assert "setWebhook" not in telegram.methods_called()
    assert await recorded(app, bot.gateway_id) == (MINIMAL, Delivery.POLLING)

    await install_via_api(app, user, "analytics")
    assert await recorded(app, bot.gateway_id) == (ANALYTICS_TYPES, Delivery.POLLING)
    with app.db():  # what the poller passes to getUpdates
        assert await app.platform.registration.allowed_updates_for(user.id) == ANALYTICS_TYPES
    assert "setWebhook" not in telegram.methods_called()


async def test_a_restart_with_another_delivery_moves_each_bot_over_at_start_up(make_app, telegram):
    hooked = await make_app()
    user = await hooked.create_user("mover@example.com")
    bot = await connect_bot(hooked, user, telegram)
    await hooked.stop()

    polled = await make_app(telegram_delivery="polling")
    await eventually(lambda: _delivery_is(polled, bot.gateway_id, Delivery.POLLING), "recorded as polled")
    assert telegram.bot(bot.token).webhook_url is None  # deleted before it was recorded
    await polled.stop()

    hooked_again = await make_app()
    await eventually(lambda: _delivery_is(hooked_again, bot.gateway_id, Delivery.WEBHOOK), "recorded as webhook")
    assert telegram.bot(bot.token).webhook_url == f"{PUBLIC}/webhooks/telegram/{bot.gateway_id}"
    assert telegram.bot(bot.token).secret_token == bot.secret


async def _delivery_is(app: LiveApp, gateway_id: str, delivery: Delivery) -> bool:
    return (await recorded(app, gateway_id))[1] == delivery


# --- the delivery mode --------------------------------------------------------------------------

POLLING_NOTE = "polling suits development and small deployments; webhooks suit production"
TO_POLLING = "so Telegram cannot post to it (set TELEGRAM_DELIVERY=webhook and an HTTPS PUBLIC_URL for webhooks)"


@pytest.mark.parametrize(
    ("public_url", "choice", "delivery", "why"),
    [
        (
            "https://plugboard.example",
            "auto",
            Delivery.WEBHOOK,
            "webhooks: Telegram posts each bot's updates to https://plugboard.example/webhooks/telegram/… "
            "(PUBLIC_URL is an HTTPS address Telegram posts to)",
        ),
        (
            "https://plugboard.example:8443/",
            "auto",
            Delivery.WEBHOOK,
            "webhooks: Telegram posts each bot's updates to https://plugboard.example:8443/webhooks/telegram/… "
            "(PUBLIC_URL is an HTTPS address Telegram posts to)",
        ),
        (
            "http://127.0.0.1:8000",
            "auto",
            Delivery.POLLING,
            f"polling: PUBLIC_URL http://127.0.0.1:8000 is not HTTPS, {TO_POLLING}; {POLLING_NOTE}",
        ),
        (
            "https://plugboard.example:8000",
            "auto",
            Delivery.POLLING,
            "polling: PUBLIC_URL https://plugboard.example:8000 uses port 8000 (Telegram posts to 443, 80, 88 or 8443 "
            f"only), {TO_POLLING}; {POLLING_NOTE}",
        ),
        (
            "https://192.168.1.5",
            "auto",
            Delivery.POLLING,
            f"polling: PUBLIC_URL https://192.168.1.5 names 192.168.1.5, which is not on the internet, {TO_POLLING}; "
            f"{POLLING_NOTE}",
        ),
        (
            "https://localhost",
            "auto",
            Delivery.POLLING,
            f"polling: PUBLIC_URL https://localhost names localhost, which is not on the internet, {TO_POLLING}; "
            f"{POLLING_NOTE}",
        ),
        (
            "http://127.0.0.1:8000",
            "webhook",
            Delivery.WEBHOOK,
            "webhooks: Telegram posts each bot's updates to http://127.0.0.1:8000/webhooks/telegram/… (TELEGRAM_DELIVERY=webhook)",
        ),
        (
            "https://plugboard.example",
            "polling",
            Delivery.POLLING,
            "polling: this server fetches each bot's updates with getUpdates (TELEGRAM_DELIVERY=polling); "
            + POLLING_NOTE,
        ),
    ],
)
def test_delivery_mode(public_url, choice, delivery, why):
    assert delivery_mode(Settings(public_url=public_url, telegram_delivery=choice)) == (delivery, why)


def test_delivery_mode_from_the_environment_defaults_to_auto():
    assert Settings.from_env({}).telegram_delivery == "auto"
    assert (
        delivery_mode(Settings.from_env({}))[0] == Delivery.POLLING
    )  # the default PUBLIC_URL is http://127.0.0.1:8000
    settings = Settings.from_env({"TELEGRAM_DELIVERY": "Webhook", "PUBLIC_URL": "http://127.0.0.1:8000"})
    assert delivery_mode(settings)[0] == Delivery.WEBHOOK


def test_delivery_mode_names_the_address_as_told():
    settings = Settings(public_url="http://127.0.0.1:5000")
    _, why = delivery_mode(settings, "PUBLIC_URL is not set, and this server's address http://127.0.0.1:5000")
    assert why.startswith(
        "polling: PUBLIC_URL is not set, and this server's address http://127.0.0.1:5000 is not HTTPS"
    )
