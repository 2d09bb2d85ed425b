"""The live analytics widget on /my-plugins: zeros before the first message, numbers that change
after webhooks without a reload, recovery after a server restart, the 30-day toggle, and a CSV
download that carries the token in a header. Then the chat picker, the 7/30/90-day picker with the
period before drawn behind, the element's attributes (a bad one is said and asks nothing), and
issue 28's sections (members, content, top posters) fed in the GraphQL contract's shape, with axe
and no sideways scrolling at 390 and 1280 px. Then custom dates (exactly those days; a bad range said
beside its field, with no request), and content, top posters and the install's zone from real
deliveries."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from tests.support import telegram_updates as t
from tests.support.installs_api import update_config
from tests.support.runtime import connect_bot, deliver, install, next_scheduler_minute, wait_until_processed
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
    await expect(widget.get_by_role("table", name=re.compile("^Busiest chats"))).to_contain_text("Test chat")
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
    await expect(periods.get_by_role("button")).to_have_text(["7 days", "30 days", "90 days", "Custom"])
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
        "from": ("2026-11-01", 'to="": Pick the last day.'),  # from goes with to
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

# Issue 28's fields, in the contract's shape: members before the server has them, and fixed figures
# (a long name, a kind with nothing) for the layout. The real ones: test_content_top_posters_….
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
    """Puts `sections["now"]`'s fields into every summary the server pushes, over what it sent."""

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


# --- phase 2: custom dates, and the server's zone, content and top posters -----------------------


def day_label(day: date) -> str:
    """A day as the chart's text alternative names it (formatDay(date, true)): "Tue, Nov 24"."""
    return f"{day:%a}, {day:%b} {day.day}"


def range_ends(first: date, last: date) -> tuple[str, str]:
    """A custom range's ends as the widget words them: "Nov 24", with the year unless both are in this one."""
    dated = {first.year, last.year} != {datetime.now(UTC).year}

    def said(day: date) -> str:
        return f"{day:%b} {day.day}" + (f", {day.year}" if dated else "")

    return said(first), said(last)


async def test_custom_dates_show_exactly_those_days_and_a_bad_range_is_refused_beside_its_field(app, tab, telegram):
    user, bot = await two_chats(app, telegram)  # 3 messages today, 1 eight days ago
    assert (await deliver(app, bot, chat_message(5, -100200, "Test chat", days_ago=10))).status_code == 200
    subscribed = subscriptions_sent(tab)
    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    periods = widget.get_by_role("group", name="Chart period")
    daily = widget.get_by_role("img", name=re.compile("^Messages and users per day"))
    await expect(figure(tab, "totalMessages")).to_have_text("5")
    today = datetime.now(UTC).date()  # the install's zone is UTC
    first, last = today - timedelta(days=8), today - timedelta(days=2)

    custom = periods.get_by_role("button", name="Custom")
    await expect(custom).to_have_attribute("aria-expanded", "false")
    await custom.click()
    form = widget.get_by_role("form", name="Custom dates")
    start, end = form.get_by_label("From"), form.get_by_label("To")
    await expect(start).to_be_focused()
    await start.fill(first.isoformat())
    await end.fill(last.isoformat())
    await form.get_by_role("button", name="Show").click()

    # Exactly those 7 days: the message of 8 days ago on the first, nothing on the other six; and
    # behind them the 7 days before, with the message of 10 days ago.
    await expect(widget).to_have_attribute("from", first.isoformat())
    await expect(widget).to_have_attribute("to", last.isoformat())
    await expect(widget).not_to_have_attribute("days", re.compile(".*"))
    await expect(custom).to_have_attribute("aria-pressed", "true")
    await expect(periods.get_by_role("button", name="7 days")).to_have_attribute("aria-pressed", "false")
    said_first, said_last = range_ends(first, last)
    await expect(widget.get_by_text(f"Messages and users per day, {said_first} – {said_last}")).to_be_visible()
    await expect(daily).to_have_attribute(
        "aria-label",
        re.compile(
            r"^Messages and users per day, dates in UTC\. The 7 days before, drawn faintly behind, had 1 message\. "
            + re.escape(f"{day_label(first)}: 1 message, 1 user; ")
            + r"(?:[^;]+: 0 messages, 0 users; ){5}"
            + re.escape(f"{day_label(last)}: 0 messages, 0 users.")
            + "$"
        ),
    )
    await expect(widget.locator('[data-kpi="totalMessages"] + .delta')).to_have_text(
        f"±0 (0%) {said_first} – {said_last} vs the 7 days before"
    )
    await expect(widget.get_by_text(f"from {said_first} to {said_last}")).to_be_visible()
    assert subscribed[-1] == {"from": first.isoformat(), "to": last.isoformat(), "span": 14, "chatId": None}

    # The CSV is of the same days.
    async with tab.page.expect_download() as download_info:
        await widget.get_by_role("link", name="Download CSV").click()
    download = await download_info.value
    assert download.suggested_filename == f"analytics-daily-{first}_{last}.csv"
    rows = (await download.path()).read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows] == ["date"] + [str(first + timedelta(days=n)) for n in range(7)]
    assert rows[1].split(",")[1] == "1"

    # To before from, and a day after today: said beside the field, and nothing is asked.
    asked = len(subscribed)
    to_error = form.get_by_text("The last day cannot be before the first.")
    await end.fill((first - timedelta(days=1)).isoformat())
    await form.get_by_role("button", name="Show").click()
    await expect(to_error).to_be_visible()
    await expect(end).to_have_attribute("aria-invalid", "true")
    await expect(end).to_have_accessible_description("The last day cannot be before the first.")
    await end.fill((today + timedelta(days=1)).isoformat())
    await form.get_by_role("button", name="Show").click()
    await expect(form.get_by_text(f"The last day cannot be after today ({today}).")).to_be_visible()
    await expect(to_error).to_be_hidden()
    await start.fill("")
    await form.get_by_role("button", name="Show").click()
    await expect(form.get_by_text("Pick the first day.")).to_be_visible()
    await expect(start).to_have_attribute("aria-invalid", "true")
    await expect(widget).to_have_attribute("to", last.isoformat())  # the range shown stays
    assert len(subscribed) == asked

    # A range the server does not keep (before the 30 days of retention): its word, beside From.
    await start.fill((today - timedelta(days=40)).isoformat())
    await end.fill((today - timedelta(days=35)).isoformat())
    await form.get_by_role("button", name="Show").click()
    kept_from = today - timedelta(days=29)
    refusal = f"is before the 30 days retention keeps (from {kept_from})"
    await expect(form.get_by_text(re.compile(re.escape(refusal)))).to_be_visible()
    await expect(start).to_have_attribute("aria-invalid", "true")
    await expect(widget.get_by_role("alert").filter(has_text=refusal)).to_be_visible()
    assert len(subscribed) == asked + 1

    # Back to the buttons: the form's errors do not stay in the way.
    await periods.get_by_role("button", name="30 days").click()
    await expect(widget).to_have_attribute("days", "30")
    await expect(widget).not_to_have_attribute("from", re.compile(".*"))
    await expect(figure(tab, "totalMessages")).to_have_text("5")
    await expect(widget.get_by_role("alert").filter(has_text=refusal)).to_be_hidden()
    await expect(form.get_by_text(re.compile(re.escape(refusal)))).to_be_hidden()
    await expect(start).not_to_have_attribute("aria-invalid", "true")
    tab.assert_no_console_errors()


ADA = {"id": 1001, "is_bot": False, "first_name": "Ada", "username": "ada"}
BOB = {"id": 1002, "is_bot": False, "first_name": "Bob"}
PHOTO = [{"file_id": "f-p1", "file_unique_id": "p1", "width": 90, "height": 60}]
STICKER = {
    "file_id": "f-st",
    "file_unique_id": "st",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}


def posted(update_id: int, sender: dict, **content) -> dict:
    return {"update_id": update_id, "message": t.message(-100200, **{"from": sender, **content})}


@pytest.mark.parametrize("viewport", [pytest.param(PHONE, id="390px"), pytest.param(DESKTOP, id="1280px")])
async def test_content_top_posters_and_the_zone_come_from_real_deliveries(app, browser, telegram, viewport):
    user, bot = await analytics_user(app, telegram)
    telegram.set_members(bot.token, -100200, 1234)  # what getChatMemberCount answers
    assert (await update_config(app, user, "analytics", {"timezone": "Asia/Kolkata"}))["status"] == "ACTIVE"
    for update in (
        posted(1, ADA, text="hello"),
        posted(2, ADA, photo=PHOTO, caption="a photo"),
        posted(3, BOB, sticker=STICKER),
    ):
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    await next_scheduler_minute(app)  # the chat's member count, asked for by its first message
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(user.token)
        widget = tab.page.locator("plugboard-analytics")
        await expect(figure(tab, "totalMessages")).to_have_text("3")

        # The install's zone, wherever the widget names one.
        await expect(widget.get_by_text("Dates in Asia/Kolkata")).to_be_visible()
        await expect(widget.get_by_text("Hours in Asia/Kolkata")).to_be_visible()
        await expect(widget.get_by_text("Dates and hours are in Asia/Kolkata.")).to_be_visible()
        await expect(widget.get_by_role("img", name=re.compile("^Messages and users per day"))).to_have_attribute(
            "aria-label", re.compile(r"^Messages and users per day, dates in Asia/Kolkata\.")
        )

        kinds = widget.get_by_role("list", name="Messages by kind").get_by_role("listitem")
        await expect(kinds).to_have_text(["Text1 (33%)", "Photos1 (33%)", "Stickers1 (33%)"])
        posters = widget.get_by_role("table", name="Top posters, last 7 days")
        rows = posters.get_by_role("row")
        await expect(rows).to_have_text(["RankMemberMessages", "1Ada@ada2", "2Bob1"])
        # Members: Telegram's count, read once the chat was first seen, on a day of Kolkata.
        await expect(widget.locator('[data-members="current"]')).to_have_text("1,234")
        kolkata_today = datetime.now(ZoneInfo("Asia/Kolkata")).date()
        await expect(widget.get_by_role("img", name=re.compile("^Members per day"))).to_have_attribute(
            "aria-label", f"Members per day, dates in Asia/Kolkata. {day_label(kolkata_today)}: 1,234 members."
        )

        # Live: more of them, without a reload.
        for update in (posted(4, BOB, text="hi"), posted(5, BOB, text="and hi"), posted(6, BOB, sticker=STICKER)):
            assert (await deliver(app, bot, update)).status_code == 200
        await expect(figure(tab, "totalMessages")).to_have_text("6")
        await expect(kinds).to_have_text(["Text3 (50%)", "Stickers2 (33%)", "Photos1 (17%)"])
        await expect(rows).to_have_text(["RankMemberMessages", "1Bob4", "2Ada@ada2"])

        # The page's zone: no note when it is the install's, a note when it is not.
        note = widget.get_by_text(re.compile("^The figures are in Asia/Kolkata, the time zone of the install's"))
        await widget.evaluate("el => el.setAttribute('timezone', 'Asia/Kolkata')")
        await expect(figure(tab, "totalMessages")).to_have_text("6")
        await expect(note).to_be_hidden()
        await widget.evaluate("el => el.setAttribute('timezone', 'Europe/Berlin')")
        await expect(note).to_have_text(
            "The figures are in Asia/Kolkata, the time zone of the install's settings, not in Europe/Berlin as this page asked."
        )

        await tab.screenshot("analytics-widget-real-sections")
        assert await tab.audit() == []
        assert await tab.overflow() is None

        # The custom dates' form open, with an error beside a field, fits and passes too.
        await widget.get_by_role("button", name="Custom").click()
        form = widget.get_by_role("form", name="Custom dates")
        await form.get_by_role("button", name="Show").click()
        await expect(form.get_by_text("Pick the first day.")).to_be_visible()
        await tab.screenshot("analytics-widget-custom-dates")
        assert await tab.audit() == []
        assert await tab.overflow() is None
        assert await tab.page.evaluate(
            "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        tab.assert_no_console_errors()
    finally:
        await tab.close()


async def test_members_come_from_telegrams_counts_live(app, tab, telegram):
    """The fake Bot API answers getChatMemberCount: a chat's count is read in the minute after its
    first message, and again after the bot is added to or promoted in a chat; a chat the bot was
    removed from is listed at once."""
    user, bot = await analytics_user(app, telegram)
    telegram.set_members(bot.token, -100200, 120)
    telegram.set_members(bot.token, SECOND_CHAT, 30)
    me = t.user(telegram.bot(bot.token).bot_id, "test_bot", is_bot=True)

    def bot_became(update_id: int, old: str, new: str, chat_id: int, title: str) -> dict:
        update = t.my_chat_member_update(update_id, t.chat_member(old, user=me), t.chat_member(new, user=me), chat_id)
        update["my_chat_member"]["chat"]["title"] = title
        return update

    await tab.sign_in(user.token)
    widget = tab.page.locator("plugboard-analytics")
    current = widget.locator('[data-members="current"]')
    change = widget.locator('[data-members="change"]')
    await expect(widget.get_by_text("No member counts yet")).to_be_visible()

    async def deliver_and_read(update: dict) -> None:
        assert (await deliver(app, bot, update)).status_code == 200
        await wait_until_processed(app)
        await next_scheduler_minute(app)

    await deliver_and_read(message_update(1))
    await expect(current).to_have_text("120")
    await expect(change).to_have_text("±0")
    await deliver_and_read(bot_became(2, "left", "member", SECOND_CHAT, "Second chat"))
    await expect(current).to_have_text("150")

    telegram.set_members(bot.token, -100200, 125)
    await deliver_and_read(bot_became(3, "member", "administrator", -100200, "Test chat"))
    await expect(current).to_have_text("155")
    await expect(change).to_have_text("+5")

    assert (await deliver(app, bot, bot_became(4, "member", "kicked", SECOND_CHAT, "Second chat"))).status_code == 200
    await expect(current).to_have_text("125")
    today = datetime.now(UTC).date()
    await expect(widget.locator(".unavailable")).to_have_text(
        f"Second chat: not counted since {today:%b} {today.day} (The bot was removed from the chat)"
    )
    await expect(widget.get_by_role("img", name=re.compile("^Members per day"))).to_have_attribute(
        "aria-label", f"Members per day, dates in UTC. {day_label(today)}: 125 members."
    )
    assert await tab.audit() == []
    tab.assert_no_console_errors()
