"""Each install's status on /my-plugins: a badge, and in words what it waits for and what to do
(connect a bot, fix its settings). A failing install is in test_runs_panel.py."""

from __future__ import annotations

import copy
import re
from dataclasses import replace

from playwright.async_api import expect

from app.plugins.handlers.analytics import AnalyticsHandler
from tests.support.runtime import connect_bot, install
from tests.web.browser import Tab

STATUS = "{ myPlugins { status statusReason } }"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class AnalyticsV2(AnalyticsHandler):
    """An upgrade that keeps fewer days: a config of 365 days no longer fits."""

    schema = copy.deepcopy(AnalyticsHandler.definition.config_schema)
    schema["properties"]["retention"]["maximum"] = 90
    definition = replace(AnalyticsHandler.definition, version="2.0.0", config_schema=schema)


async def test_a_plugin_waits_for_a_bot_and_is_active_once_one_is_connected_from_the_page(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    telegram.add_bot(TOKEN, "greeter_bot")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    badge = card.locator(".install-status")
    await expect(badge).to_have_text("Status: Waiting for a bot")
    await expect(card).to_contain_text("Waiting for a Telegram bot: connect one and this plugin starts")

    # The notice leads to the bot form; the keyboard does the rest.
    await card.get_by_role("link", name="Connect a bot").click()
    token = tab.page.get_by_role("textbox", name="Bot token")
    await expect(token).to_be_focused()
    await tab.page.keyboard.type(TOKEN)
    await tab.page.keyboard.press("Enter")
    await expect(badge).to_have_text("Status: Active")
    await expect(card.get_by_text("Waiting for a Telegram bot")).to_have_count(0)
    assert (await app.graphql(STATUS, user=user))["myPlugins"] == [{"status": "ACTIVE", "statusReason": None}]

    await card.get_by_role("switch", name="Enabled").click()
    await expect(badge).to_have_text("Status: Off")
    await expect(card).to_contain_text("Paused: turn on Enabled to run it again.")
    assert (await app.graphql(STATUS, user=user))["myPlugins"][0]["status"] == "DISABLED"
    tab.assert_no_console_errors()


async def test_settings_that_no_longer_fit_after_an_upgrade_are_fixed_from_the_notice(make_app, browser, telegram):
    v1 = await make_app(handlers=[AnalyticsHandler()])
    user = await v1.create_user("ada@example.com", "pro")
    await connect_bot(v1, user, telegram)
    await install(v1, user, "analytics", {"retention": 365})
    await v1.stop()

    v2 = await make_app(handlers=[AnalyticsV2()])
    tab = await Tab.open(browser, v2.url)
    try:
        await tab.sign_in(user.token)
        card = tab.page.get_by_role("article", name="Channel Analytics")
        badge = card.locator(".install-status")
        await expect(badge).to_have_text("Status: Needs settings")
        await expect(card).to_contain_text(
            "Plugin upgraded to 2.0.0; the config needs changes: /retention 365 is greater than the maximum of 90"
        )

        await card.get_by_role("button", name="Open settings").click()
        await expect(card.get_by_role("button", name="Configure")).to_have_attribute("aria-expanded", "true")
        retention = card.get_by_role("spinbutton", name="Retention (days)")
        await expect(retention).to_have_value("365")  # kept as it was, for its user to change
        await retention.fill("90")
        await card.get_by_role("button", name="Save").click()
        await expect(badge).to_have_text("Status: Active")
        await expect(card.get_by_role("button", name="Open settings")).to_have_count(0)
        assert (await v2.graphql(STATUS, user=user))["myPlugins"] == [{"status": "ACTIVE", "statusReason": None}]
        assert re.search(r"Version 2\.0\.0", await card.inner_text())
        tab.assert_no_console_errors()
    finally:
        await tab.close()
