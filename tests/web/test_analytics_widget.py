"""The live analytics widget on /my-plugins: zeros before the first message, numbers that change
after webhooks without a reload, recovery after a server restart, the 30-day toggle, and a CSV
download that carries the token in a header."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.support.runtime import connect_bot, deliver, install
from tests.support.telegram_updates import message_update
from tests.web.restart import start_again


def figure(tab, key: str):
    return tab.page.locator("plugboard-analytics").locator(f'[data-kpi="{key}"]')


async def analytics_user(app, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "analytics")
    bot = await connect_bot(app, user, telegram)
    return user, bot


async def test_before_the_first_message_the_widget_shows_zeros(app, tab, telegram):
    user, _ = await analytics_user(app, telegram)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")

    await expect(widget.get_by_role("heading", name="Channel Analytics")).to_be_visible()
    for key in ("totalMessages", "messagesToday", "messagesThisWeek", "uniqueUsers"):
        await expect(figure(tab, key)).to_have_text("0")
    for label in ("Total messages", "Messages today", "This week", "Unique users"):
        await expect(widget.get_by_text(label, exact=True)).to_be_visible()
    await expect(widget.get_by_text("No messages yet.")).to_be_visible()
    await expect(widget.get_by_text("Dates in UTC")).to_be_visible()
    await expect(widget.get_by_text("Live", exact=True)).to_be_visible()
    tab.assert_no_console_errors()


async def test_numbers_change_after_webhooks_without_a_reload_and_recover_after_a_restart(app, tab, telegram):
    user, bot = await analytics_user(app, telegram)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    await expect(figure(tab, "messagesToday")).to_have_text("0")
    await expect(widget.get_by_text("Live", exact=True)).to_be_visible()
    page_loads = []
    tab.page.on("load", lambda page: page_loads.append(page.url))

    for update_id, sender in ((1, 1001), (2, 1002), (3, 1001)):
        assert (await deliver(app, bot, message_update(update_id, sender_id=sender))).status_code == 200
    await expect(figure(tab, "messagesToday")).to_have_text("3")
    await expect(figure(tab, "totalMessages")).to_have_text("3")
    await expect(figure(tab, "uniqueUsers")).to_have_text("2")
    await expect(widget.get_by_role("table")).to_contain_text("Test chat")
    await expect(widget.get_by_text("No messages yet.")).to_be_hidden()

    # The server goes away: the widget says so, and comes back by itself when a new one is up.
    reconnecting = widget.get_by_text("Reconnecting…")
    with tab.server_down():
        await app.stop()
        await expect(reconnecting).to_be_visible()
        again = await start_again(app)
        try:
            await expect(reconnecting).to_be_hidden()
            await expect(widget.get_by_text("Live", exact=True)).to_be_visible()
        except BaseException:
            await again.stop()
            raise
    try:
        for update_id in (4, 5):
            assert (await deliver(again, bot, message_update(update_id, sender_id=1003))).status_code == 200
        await expect(figure(tab, "messagesToday")).to_have_text("5")
        await expect(figure(tab, "uniqueUsers")).to_have_text("3")
        assert page_loads == []  # all of it live, without a reload
        tab.assert_no_console_errors()  # checked while the server is up: once it stops, the page retries
    finally:
        with tab.server_down():
            await again.stop()


async def test_the_chart_has_a_30_day_view_and_the_csv_comes_with_the_token_in_a_header(app, tab, telegram):
    user, bot = await analytics_user(app, telegram)
    assert (await deliver(app, bot, message_update(1))).status_code == 200
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    await expect(figure(tab, "totalMessages")).to_have_text("1")

    periods = widget.get_by_role("group", name="Chart period")
    await expect(periods.get_by_role("button", name="7 days")).to_have_attribute("aria-pressed", "true")
    await expect(widget.get_by_text("Messages and users per day, last 7 days")).to_be_visible()
    daily = widget.get_by_role("img", name=re.compile("^Messages and users per day"))
    await expect(daily).to_have_attribute(
        "aria-label", re.compile(r"^(?:[^;]+: 0 messages, 0 users; ){6}[^;]+: 1 message, 1 user\.$")
    )

    await periods.get_by_role("button", name="30 days").click()
    await expect(periods.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
    await expect(widget.get_by_text("Messages and users per day, last 30 days")).to_be_visible()
    await expect(daily).to_have_attribute(
        "aria-label", re.compile(r"^(?:[^;]+: 0 messages, 0 users; ){29}[^;]+: 1 message, 1 user\.$")
    )
    await expect(widget.get_by_role("img", name=re.compile("^Messages by hour of day"))).to_have_attribute(
        "aria-label", re.compile("with 1")
    )

    async with tab.page.expect_download() as download_info:
        await widget.get_by_role("link", name="Download CSV").click()
    download = await download_info.value
    assert download.suggested_filename == "analytics-daily-30d.csv"
    rows = (await download.path()).read_text().strip().splitlines()
    assert rows[0].startswith("date,")
    assert len(rows) == 31
    csv_requests = [(url, headers) for url, headers in tab.requests if "/analytics.csv" in url]
    assert csv_requests and all(headers.get("authorization") == f"Bearer {user.token}" for _, headers in csv_requests)
    assert all(user.token not in url for url, _ in tab.requests)
    tab.assert_no_console_errors()


async def test_without_analytics_installed_my_plugins_shows_no_widget(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    await tab.sign_in(user.token)
    await expect(tab.page.get_by_role("article", name="Welcome Messages")).to_be_visible()
    await expect(tab.page.locator("plugboard-analytics")).to_have_count(0)
    tab.assert_no_console_errors()
