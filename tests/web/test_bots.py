"""Connecting a bot from /my-plugins, with Telegram's refusal shown beside the token field."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.runtime import install

GATEWAYS = "{ myGateways { isActive botUsername } }"


async def test_a_plugin_waits_for_a_bot_until_one_is_connected_from_the_page(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    telegram.add_bot("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "greeter_bot")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await expect(card.get_by_text("Waiting for a Telegram bot")).to_be_visible()

    form = tab.page.get_by_role("form", name="Connect a bot")
    await form.get_by_label("Bot token").fill("123456789:not-the-right-secret-part-at-all")
    await form.get_by_role("button", name="Connect bot").click()
    await expect(form.get_by_label("Bot token")).to_have_attribute("aria-invalid", "true")
    await expect(form).to_contain_text("Rejected by Telegram")
    assert (await app.graphql(GATEWAYS, user=user))["myGateways"] == []

    await form.get_by_label("Bot token").fill("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    await form.get_by_role("button", name="Connect bot").click()
    bots = tab.page.get_by_role("region", name="Telegram bots")
    await expect(bots.get_by_text("@greeter_bot")).to_be_visible()
    await expect(card.get_by_text("Waiting for a Telegram bot")).to_have_count(0)
    assert (await app.graphql(GATEWAYS, user=user))["myGateways"] == [{"isActive": True, "botUsername": "greeter_bot"}]

    await bots.get_by_role("button", name="Disconnect").click()
    await tab.page.get_by_role("dialog").get_by_role("button", name="Disconnect").click()
    await expect(
        tab.page.get_by_role("article", name="Welcome Messages").get_by_text("Waiting for a Telegram bot")
    ).to_be_visible()
    assert (await app.graphql(GATEWAYS, user=user))["myGateways"] == [{"isActive": False, "botUsername": "greeter_bot"}]
    tab.assert_no_console_errors()
