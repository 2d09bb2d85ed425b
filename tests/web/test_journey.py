"""The whole path a user takes, in one real browser session: sign in, install from /plugins,
configure on /my-plugins (a refused value first), watch the widget move with webhooks and come
back after a server restart, pause and resume a plugin, uninstall one, and no errors in the console."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.support.runtime import connect_bot, deliver
from tests.support.telegram_updates import message_update
from tests.web.restart import start_again


async def test_a_user_installs_configures_watches_and_tidies_up(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    page = tab.page

    # Sign in on the catalog and install both plugins.
    await tab.sign_in(user.token, "/plugins")
    for name in ("Channel Analytics", "Welcome Messages"):
        card = page.get_by_role("article", name=name)
        await card.get_by_role("button", name="Install").click()
        await expect(card.get_by_text("Installed", exact=True)).to_be_visible()

    # Configure analytics: 0 days is refused beside the field, 45 is saved.
    bot = await connect_bot(app, user, telegram)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="My plugins").click()
    analytics = page.get_by_role("article", name="Channel Analytics")
    await analytics.get_by_role("button", name="Configure").click()
    retention = analytics.get_by_role("spinbutton", name="Retention (days)")
    await retention.fill("0")
    await analytics.get_by_role("button", name="Save").click()
    await expect(retention).to_have_accessible_description(re.compile("Must be at least 1."))
    await retention.fill("45")
    await analytics.get_by_role("button", name="Save").click()
    await expect(analytics.get_by_role("status")).to_have_text("Saved")

    # The widget moves with webhooks, live.
    today = page.locator("plugboard-analytics").locator('[data-kpi="messagesToday"]')
    await expect(today).to_have_text("0")
    for update_id in (1, 2):
        assert (await deliver(app, bot, message_update(update_id))).status_code == 200
    await expect(today).to_have_text("2")

    # The server restarts: "Reconnecting…", then live again without a reload.
    reconnecting = page.locator("plugboard-analytics").get_by_text("Reconnecting…")
    with tab.server_down():  # until the page is live again: a refused attempt may be reported late
        await app.stop()
        await expect(reconnecting).to_be_visible()
        again = await start_again(app)
        try:
            await expect(reconnecting).to_be_hidden()
        except BaseException:
            await again.stop()
            raise
    try:
        assert (await deliver(again, bot, message_update(3))).status_code == 200
        await expect(today).to_have_text("3")

        # Pause and resume welcome, then uninstall it.
        welcome = page.get_by_role("article", name="Welcome Messages")
        switch = welcome.get_by_role("switch", name="Enabled")
        await switch.click()
        await expect(switch).not_to_be_checked()
        await switch.click()
        await expect(switch).to_be_checked()
        await welcome.get_by_role("button", name="Uninstall").click()
        await (
            page.get_by_role("dialog", name="Uninstall Welcome Messages?")
            .get_by_role("button", name="Uninstall")
            .click()
        )
        await expect(welcome).to_have_count(0)

        mine = await again.graphql("{ myPlugins { isEnabled config plugin { slug } } }", user=user)
        assert mine["myPlugins"] == [
            {
                "isEnabled": True,
                "config": {"trackUsers": True, "retention": 45, "timezone": "UTC"},
                "plugin": {"slug": "analytics"},
            }
        ]
        tab.assert_no_console_errors()  # checked while the server is up: once it stops, the page retries
    finally:
        with tab.server_down():
            await again.stop()
