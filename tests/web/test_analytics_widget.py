"""The live analytics widget on /my-plugins: zeros before the first message, numbers that change
after webhooks without a reload, recovery after a server restart, the 30-day toggle, and a CSV
download that carries the token in a header. Then the chat picker, the 7/30/90-day picker with the
period before drawn behind, the element's attributes (a bad one is said and asks nothing), and
issue 28's sections (members, content, top posters) fed in the GraphQL contract's shape, with axe
and no sideways scrolling at 390 and 1280 px."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from tests.support.runtime import connect_bot, deliver, install
from tests.support.telegram_updates import message_update
from tests.web.browser import DESKTOP, PHONE, Tab
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


# --- the pickers, the attributes, issue 28's sections, and the layout ----------------------------

SECOND_CHAT = -100_201


def chat_message(update_id: int, chat_id: int, title: str, sender_id: int = 1001, days_ago: int = 0) -> dict:
    update = message_update(update_id, chat_id=chat_id, sender_id=sender_id)
    update["message"]["chat"]["title"] = title
    update["message"]["date"] -= days_ago * 86_400
    return update


async def two_chats(app, telegram, second_title: str = "Second chat"):
    """Three messages in "Test chat" (one of them 8 days ago) and one in a second chat."""
    user, bot = await analytics_user(app, telegram)
    updates = [
        chat_message(1, -100200, "Test chat"),
        chat_message(2, -100200, "Test chat", sender_id=1002),
        chat_message(3, -100200, "Test chat", days_ago=8),
        chat_message(4, SECOND_CHAT, second_title, sender_id=1003),
    ]
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    return user, bot


def subscriptions_sent(tab) -> list[dict]:
    """The variables of each subscription the page starts from now on, in order."""
    sent: list[dict] = []

    def frame(payload) -> None:
        message = json.loads(payload) if isinstance(payload, str) else {}
        if message.get("type") == "subscribe":
            sent.append(message["payload"]["variables"])

    tab.page.on("websocket", lambda ws: ws.on("framesent", frame))
    return sent


async def test_picking_a_chat_shows_only_that_chats_figures_and_all_chats_again(app, tab, telegram):
    user, _ = await two_chats(app, telegram)
    subscribed = subscriptions_sent(tab)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    chats = widget.get_by_role("table", name=re.compile("^Busiest chats"))
    await expect(figure(tab, "totalMessages")).to_have_text("4")
    picker = widget.get_by_label("Chat", exact=True)
    await expect(picker.locator("option")).to_have_text(["All chats", "Second chat", "Test chat"])
    await expect(picker).to_have_value("")

    await picker.select_option(label="Second chat")
    await expect(figure(tab, "totalMessages")).to_have_text("1")
    await expect(figure(tab, "uniqueUsers")).to_have_text("1")
    await expect(chats).to_contain_text("Second chat")
    await expect(chats).not_to_contain_text("Test chat")
    await expect(widget).to_have_attribute("chat-id", str(SECOND_CHAT))
    # The picker still offers every chat while it shows one.
    await expect(picker.locator("option")).to_have_text(["All chats", "Second chat", "Test chat"])

    await picker.select_option(label="Test chat")
    await expect(figure(tab, "totalMessages")).to_have_text("3")
    await expect(chats).not_to_contain_text("Second chat")

    await picker.select_option(label="All chats")
    await expect(figure(tab, "totalMessages")).to_have_text("4")
    await expect(chats).to_contain_text("Second chat")
    await expect(widget).not_to_have_attribute("chat-id", re.compile(".*"))
    assert [v["chatId"] for v in subscribed] == [None, str(SECOND_CHAT), "-100200", None]
    tab.assert_no_console_errors()


async def test_the_range_picker_switches_between_7_30_and_90_days_with_the_period_before_behind(app, tab, telegram):
    user, _ = await two_chats(app, telegram)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    periods = widget.get_by_role("group", name="Chart period")
    daily = widget.get_by_role("img", name=re.compile("^Messages and users per day"))
    await expect(figure(tab, "totalMessages")).to_have_text("4")
    await expect(periods.get_by_role("button")).to_have_text(["7 days", "30 days", "90 days"])
    # The message of 8 days ago is in the 7 days before the last 7, drawn faintly behind them.
    await expect(daily).to_have_attribute(
        "aria-label", re.compile(r"The 7 days before, drawn faintly behind, had 1 message\.")
    )
    await expect(daily).to_have_attribute(
        "aria-label", re.compile(r"(?:[^;]+: 0 messages, 0 users; ){6}[^;]+: 3 messages, 3 users\.$")
    )

    for days in (90, 30, 7, 30):
        await periods.get_by_role("button", name=f"{days} days").click()
        for other in (7, 30, 90):
            pressed = "true" if other == days else "false"
            await expect(periods.get_by_role("button", name=f"{other} days")).to_have_attribute("aria-pressed", pressed)
        await expect(widget.get_by_text(f"Messages and users per day, last {days} days")).to_be_visible()
        await expect(widget).to_have_attribute("days", str(days))
        await expect(daily).to_have_attribute(
            "aria-label", re.compile(rf"(?:[^;]+: \d messages?, \d users?; ){{{days - 1}}}")
        )
    # Over 30 days, the message of 8 days ago is in the window, and the 30 days before are empty.
    await expect(daily).to_have_attribute(
        "aria-label", re.compile(r"The 30 days before, drawn faintly behind, had 0 messages\.")
    )
    await expect(daily).to_have_attribute("aria-label", re.compile(r"\w+, \w+ \d+: 1 message, 1 user; (?:[^;]+; ){7}"))
    tab.assert_no_console_errors()


async def test_the_attributes_choose_the_chat_and_range_and_a_bad_one_is_said_without_a_request(app, tab, telegram):
    user, _ = await two_chats(app, telegram)
    subscribed = subscriptions_sent(tab)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    problem = widget.get_by_role("alert")
    await expect(figure(tab, "totalMessages")).to_have_text("4")

    async def set_attributes(**attributes: str | None) -> None:
        await widget.evaluate(
            """(el, attributes) => { for (const [name, value] of Object.entries(attributes)) {
                 if (value === null) el.removeAttribute(name); else el.setAttribute(name, value); } }""",
            {name.replace("_", "-"): value for name, value in attributes.items()},
        )

    bad = {
        "chat_id": ("abc", 'chat-id="abc" is not a Telegram chat id'),
        "days": ("14", 'days="14" is not offered: use 7, 30 or 90'),
        "timezone": ("Mars/Base", 'timezone="Mars/Base" is not a time zone'),
        "from": ("2026-11-01", "from and to are not supported by this server yet"),
    }
    for name, (value, message) in bad.items():
        await set_attributes(**{name: value})
        await expect(problem).to_contain_text(message)
        await expect(figure(tab, "totalMessages")).to_be_hidden()
        await set_attributes(**{name: None})
        await expect(problem).to_be_hidden()
        await expect(figure(tab, "totalMessages")).to_have_text("4")
    assert len(subscribed) == 1 + len(bad)  # one per fix, none for a bad attribute

    # Two attributes set together: one subscription, with both.
    await set_attributes(chat_id=str(SECOND_CHAT), days="90")
    await expect(figure(tab, "totalMessages")).to_have_text("1")
    await expect(widget.get_by_role("button", name="90 days")).to_have_attribute("aria-pressed", "true")
    await expect(widget.get_by_label("Chat", exact=True)).to_have_value(str(SECOND_CHAT))
    assert subscribed[-1] == {"days": 90, "span": 180, "chatId": str(SECOND_CHAT)}
    assert len(subscribed) == 2 + len(bad)

    # The zone the page expects, when the figures are in another: said, not hidden.
    await set_attributes(timezone="Asia/Kolkata")
    await expect(
        widget.get_by_text("The figures are in UTC, the time zone of the install's settings, not in Asia/Kolkata")
    ).to_be_visible()
    await expect(widget.get_by_text("Dates in UTC")).to_be_visible()

    # A widget embedded on one chat: its picker still offers the others (read once over HTTP).
    await tab.page.evaluate(
        f"""() => {{
          const old = document.querySelector("plugboard-analytics");
          const embedded = document.createElement("plugboard-analytics");
          embedded.setAttribute("chat-id", "{SECOND_CHAT}");
          embedded.setAttribute("days", "30");
          old.replaceWith(embedded);
        }}"""
    )
    await expect(figure(tab, "totalMessages")).to_have_text("1")
    await expect(widget.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
    picker = widget.get_by_label("Chat", exact=True)
    await expect(picker).to_have_value(str(SECOND_CHAT))
    await expect(picker.locator("option")).to_have_text(["All chats", "Second chat", "Test chat"])
    tab.assert_no_console_errors()


LONG_TITLE = ("The weekend hiking club of the northern valleys and all their friends " * 2).strip()

# Issue 28's fields, in the contract's shape, as the server will send them (phase 2).
SECTIONS = {
    "timezone": "Asia/Kolkata",
    "members": {
        "current": 1234,
        "change": 34,
        "daily": [{"date": f"2026-11-{d:02d}", "count": 1200 + d * 5} for d in range(24, 31)],
        "unavailable": [
            {"chatId": "-100999", "title": "Old group", "reason": "bot was kicked", "since": "2026-11-20T10:00:00Z"}
        ],
    },
    "content": [
        {"kind": "TEXT", "count": 120},
        {"kind": "PHOTO", "count": 30},
        {"kind": "VIDEO_NOTE", "count": 5},
        {"kind": "STICKER", "count": 0},
    ],
    "topPosters": [
        {"userId": "1001", "firstName": "Ada", "username": "ada_lovelace", "messages": 80},
        {
            "userId": "1002",
            "firstName": "Maximilian Alexander von Humboldt-Wittgenstein",
            "username": None,
            "messages": 12,
        },
        {"userId": "1003", "firstName": None, "username": None, "messages": 3},
    ],
}
EMPTY_SECTIONS = {
    "members": {"current": None, "change": 0, "daily": [], "unavailable": []},
    "content": [],
    "topPosters": [],
}


async def with_sections(tab, sections: dict[str, dict]) -> None:
    """Adds `sections["now"]`'s fields to every summary the server pushes (phase 1's server has none)."""

    def route(ws) -> None:
        server = ws.connect_to_server()

        def from_server(message) -> None:
            data = json.loads(message)
            if data.get("type") == "next" and data["payload"].get("data"):
                data["payload"]["data"]["analyticsUpdated"].update(sections["now"])
            ws.send(json.dumps(data))

        server.on_message(from_server)

    await tab.page.route_web_socket(re.compile(r"/graphql$"), route)


@pytest.mark.parametrize("viewport", [pytest.param(PHONE, id="390px"), pytest.param(DESKTOP, id="1280px")])
async def test_the_widget_with_every_section_passes_axe_and_fits_a_phone(app, browser, telegram, viewport):
    user, bot = await two_chats(app, telegram, second_title=LONG_TITLE)
    tab = await Tab.open(browser, app.url, viewport)
    try:
        sections = {"now": SECTIONS}
        await with_sections(tab, sections)
        await tab.sign_in(user.token)
        widget = tab.page.locator("plugboard-analytics")
        await expect(figure(tab, "totalMessages")).to_have_text("4")

        # The zone is the server's.
        await expect(widget.get_by_text("Dates in Asia/Kolkata")).to_be_visible()
        await expect(widget.get_by_text("Hours in Asia/Kolkata")).to_be_visible()
        # Members: the count, its change, a chart with its text alternative, a chat no longer read.
        await expect(widget.locator('[data-members="current"]')).to_have_text("1,234")
        await expect(widget.locator('[data-members="change"]')).to_have_text("+34")
        members = widget.get_by_role("img", name=re.compile("^Members per day"))
        await expect(members).to_have_attribute(
            "aria-label",
            re.compile(
                r"^Members per day, dates in Asia/Kolkata\. Tue, Nov 24: 1,320 members; .*Mon, Nov 30: 1,350 members\.$"
            ),
        )
        await expect(widget.get_by_text("Old group")).to_be_visible()
        # Content: busiest kind first, kinds with nothing left out.
        kinds = widget.get_by_role("list", name="Messages by kind").get_by_role("listitem")
        await expect(kinds).to_have_text(["Text120 (77%)", "Photos30 (19%)", "Video messages5 (3%)"])
        # Top posters: a table with headers.
        posters = widget.get_by_role("table", name="Top posters, last 7 days")
        await expect(posters.get_by_role("columnheader")).to_have_text(["Rank", "Member", "Messages"])
        await expect(posters.get_by_role("row")).to_have_count(4)
        await expect(posters.get_by_role("row").nth(1)).to_have_text("1Ada@ada_lovelace80")
        await expect(posters.get_by_role("row").nth(3)).to_contain_text("User 1003")

        await tab.screenshot("analytics-widget-sections")
        assert await tab.audit() == []
        assert await tab.overflow() is None
        assert await tab.page.evaluate(
            "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )

        # The empty states, on the next push.
        sections["now"] = EMPTY_SECTIONS
        assert (await deliver(app, bot, chat_message(5, -100200, "Test chat"))).status_code == 200
        await expect(figure(tab, "totalMessages")).to_have_text("5")
        await expect(widget.get_by_text("No member counts yet")).to_be_visible()
        await expect(widget.get_by_text("No messages in this range.")).to_be_visible()
        await expect(widget.get_by_text("or the install does not track users")).to_be_visible()
        await expect(widget.get_by_text("Dates in UTC")).to_be_visible()  # no timezone: UTC

        # A chat picked, and 90 days: the long title and 90 days' bars fit.
        await widget.get_by_label("Chat", exact=True).select_option(label=LONG_TITLE)
        await expect(figure(tab, "totalMessages")).to_have_text("1")
        await widget.get_by_role("button", name="90 days").click()
        await expect(widget.get_by_text("Messages and users per day, last 90 days")).to_be_visible()
        await expect(widget.get_by_role("img", name=re.compile("^Messages and users per day"))).to_have_attribute(
            "aria-label", re.compile(r"(?:[^;]+; ){89}[^;]+: 1 message, 1 user\.$")
        )
        await tab.screenshot("analytics-widget-sections-empty")
        assert await tab.audit() == []
        assert await tab.overflow() is None
        tab.assert_no_console_errors()
    finally:
        await tab.close()
