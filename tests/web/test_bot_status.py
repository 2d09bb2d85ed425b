"""Each connected bot's status on /my-plugins: a badge, and what to do about it (a refused token
gets a Reconnect form, a failing webhook shows Telegram's error and what waits, a polling conflict
its reason). The states other parts produce are arranged by writing the gateway's row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect

from app.gateways.models import Gateway, GatewayStatus
from app.gateways.status import TOKEN_REJECTED_REASON
from tests.support.runtime import connect_bot, install
from tests.web.browser import DESKTOP, PHONE, Tab
from tests.web.test_quality import check_page

GATEWAYS = "{ myGateways { id status isActive } }"
NEW_TOKEN = "7777777:AAF-a-new-token-from-botfather-000000000"
VIEWPORTS = [pytest.param(PHONE, id="390px"), pytest.param(DESKTOP, id="1280px")]


async def arrange(app, gateway_id: str, **columns: Any) -> None:
    with app.db():
        await Gateway.filter(id=gateway_id).update(**columns)


def bot_card(tab: Tab, name: str):
    return tab.page.get_by_role("region", name="Telegram bots").get_by_role("article", name=name)


async def test_a_refused_token_is_shown_and_reconnecting_the_bot_with_its_new_token_brings_it_back(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    bot = await connect_bot(app, user, telegram, username="greeter_bot")
    await install(app, user, "welcome")
    await arrange(app, bot.gateway_id, status=GatewayStatus.TOKEN_REJECTED, status_reason=TOKEN_REJECTED_REASON)
    telegram.replace_token(bot.token, NEW_TOKEN)  # /revoke in @BotFather: the same bot, a new token

    await tab.sign_in(user.token)
    card = bot_card(tab, "@greeter_bot")
    await expect(card.locator(".bot-status")).to_have_text("Status: Token refused")
    await expect(card).to_contain_text("revoked in @BotFather")
    form = card.get_by_role("form", name="Reconnect @greeter_bot")
    token = form.get_by_role("textbox", name="New token")
    await expect(token).to_be_visible()

    await form.get_by_role("button", name="Reconnect").click()  # nothing pasted
    await expect(token).to_have_attribute("aria-invalid", "true")
    await expect(token).to_be_focused()
    await token.fill(bot.token)  # the old one: Telegram refuses it
    await form.get_by_role("button", name="Reconnect").click()
    await expect(form).to_contain_text("Rejected by Telegram")
    await expect(token).to_have_attribute("aria-invalid", "true")

    await token.fill(NEW_TOKEN)
    await token.press("Enter")
    await expect(card.locator(".bot-status")).to_have_text("Status: Connected")
    await expect(card).to_contain_text("via webhook")
    await expect(card.get_by_role("form")).to_have_count(0)
    # The same gateway, back at work: not a new one beside the old.
    assert (await app.graphql(GATEWAYS, user=user))["myGateways"] == [
        {"id": bot.gateway_id, "status": "ACTIVE", "isActive": True}
    ]
    await expect(tab.page.get_by_role("article", name="Welcome Messages").locator(".install-status")).to_have_text(
        "Status: Active"
    )
    tab.assert_no_console_errors()


async def test_a_failing_webhook_shows_telegrams_error_and_what_waits(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    bot = await connect_bot(app, user, telegram, username="greeter_bot")
    await arrange(
        app,
        bot.gateway_id,
        status=GatewayStatus.WEBHOOK_FAILING,
        status_reason="Telegram reports that it cannot deliver to the webhook, and 12 updates wait",
        pending_updates=12,
        last_error_at=datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC),
        last_error_message="Wrong response from the webhook: 503 Service Unavailable",
        checked_at=datetime(2025, 3, 1, 12, 31, tzinfo=UTC),
    )
    await tab.sign_in(user.token)
    card = bot_card(tab, "@greeter_bot")
    await expect(card.locator(".bot-status")).to_have_text("Status: Webhook failing")
    await expect(card).to_contain_text("Telegram reports that it cannot deliver to the webhook")
    await expect(card).to_contain_text("Wrong response from the webhook: 503 Service Unavailable")
    await expect(card).to_contain_text("2025-03-01 12:30 UTC")
    await expect(card).to_contain_text("12 updates")
    await expect(card).to_contain_text("PUBLIC_URL")
    await expect(card).to_contain_text(f"https://plugboard.example/webhooks/telegram/{bot.gateway_id}")
    await expect(card.get_by_role("button", name="Check now")).to_be_visible()
    tab.assert_no_console_errors()


async def test_check_now_asks_telegram_and_shows_the_bot_connected_once_it_delivers_again(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    bot = await connect_bot(app, user, telegram, username="greeter_bot")
    # The page last saw a failing webhook; Telegram now reports none.
    await arrange(
        app,
        bot.gateway_id,
        status=GatewayStatus.WEBHOOK_FAILING,
        pending_updates=3,
        last_error_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        last_error_message="Connection timed out",
        checked_at=datetime(2025, 3, 1, 12, 31, tzinfo=UTC),
    )
    await tab.sign_in(user.token)
    card = bot_card(tab, "@greeter_bot")
    await card.get_by_role("button", name="Check now").click()
    await expect(card.locator(".bot-status")).to_have_text("Status: Connected")
    await expect(card.get_by_text("Connection timed out")).to_have_count(0)
    assert telegram.methods_called()[-1] == "getWebhookInfo"
    tab.assert_no_console_errors()


async def test_check_now_shows_what_telegram_reports_when_the_webhook_still_fails(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    bot = await connect_bot(app, user, telegram, username="greeter_bot")
    await arrange(
        app,
        bot.gateway_id,
        status=GatewayStatus.WEBHOOK_FAILING,
        pending_updates=1,
        last_error_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        last_error_message="Connection refused",
        checked_at=datetime(2025, 3, 1, 12, 31, tzinfo=UTC),
    )
    telegram.fail_webhook(bot.token, "Wrong response from the webhook: 502 Bad Gateway", pending=4)
    await tab.sign_in(user.token)
    card = bot_card(tab, "@greeter_bot")
    await expect(card).to_contain_text("Connection refused")
    await card.get_by_role("button", name="Check now").click()
    await expect(card).to_contain_text("Wrong response from the webhook: 502 Bad Gateway")
    await expect(card).to_contain_text("4 updates")
    await expect(card.locator(".bot-status")).to_have_text("Status: Webhook failing")
    await expect(tab.page.get_by_role("status").locator(".toast")).to_contain_text("Still failing")
    tab.assert_no_console_errors()


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_every_status_at_a_phones_width_and_a_desktops(app, browser, telegram, viewport):
    """One bot in each status the list shows, and a disconnected one it does not: axe-core finds
    nothing serious, nothing sticks out sideways."""
    user = await app.create_user("grace.hopper@example.com", "pro")
    await install(app, user, "welcome")
    refused = await connect_bot(app, user, telegram, username="refused_token_bot")
    failing = await connect_bot(app, user, telegram, username="failing_webhook_with_a_long_name_bot")
    conflict = await connect_bot(app, user, telegram, username="conflict_bot")
    await connect_bot(app, user, telegram, username="healthy_bot")
    gone = await connect_bot(app, user, telegram, username="gone_bot")
    await arrange(app, refused.gateway_id, status=GatewayStatus.TOKEN_REJECTED, status_reason=TOKEN_REJECTED_REASON)
    await arrange(
        app,
        failing.gateway_id,
        status=GatewayStatus.WEBHOOK_FAILING,
        status_reason="Telegram's last delivery failed 3 minutes ago",
        pending_updates=1234,
        last_error_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        last_error_message="Wrong response from the webhook: 503 Service Unavailable",
        checked_at=datetime(2025, 3, 1, 12, 31, tzinfo=UTC),
    )
    await arrange(
        app,
        conflict.gateway_id,
        status=GatewayStatus.POLLING_CONFLICT,
        status_reason="Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    )
    await app.graphql("mutation($id: ID!) { disconnectGateway(gatewayId: $id) }", {"id": gone.gateway_id}, user=user)

    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(user.token)
        bots = tab.page.get_by_role("region", name="Telegram bots")
        await expect(bots.get_by_role("article")).to_have_count(4)
        await expect(bots.get_by_role("article", name="@gone_bot")).to_have_count(0)
        badges = {
            "@refused_token_bot": "Status: Token refused",
            "@failing_webhook_with_a_long_name_bot": "Status: Webhook failing",
            "@conflict_bot": "Status: Polling conflict",
            "@healthy_bot": "Status: Connected",
        }
        for name, badge in badges.items():
            await expect(bot_card(tab, name).locator(".bot-status")).to_have_text(badge)
        await expect(bot_card(tab, "@conflict_bot")).to_contain_text("terminated by other getUpdates request")
        await expect(bot_card(tab, "@healthy_bot")).to_contain_text("via webhook")
        await check_page(tab, "my-plugins-bot-statuses")

        # The reconnect form's own error, audited too.
        form = bot_card(tab, "@refused_token_bot").get_by_role("form")
        await form.get_by_role("button", name="Reconnect").click()
        await expect(form.get_by_role("textbox", name="New token")).to_have_attribute("aria-invalid", "true")
        await check_page(tab, "my-plugins-bot-reconnect-error")
    finally:
        await tab.close()
