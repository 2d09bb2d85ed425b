"""Query.analytics and GET /analytics.csv: exact figures by the counting rules, over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from app.analytics.buckets import bucket_of
from app.analytics.models import AnalyticsBucket, AnalyticsUserDay
from app.analytics.reader import AnalyticsReader, Window
from app.plugins.models import UserPlugin
from tests.support.queries import counting_queries
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import (
    channel_post_update,
    chat_member,
    chat_member_update,
    message_update,
    new_members_update,
    user,
)

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)

SUMMARY = """query($chatId: ID, $days: Int) { analytics(chatId: $chatId, days: $days) {
  totalMessages messagesReceived messagesSent uniqueUsers messagesToday messagesThisWeek
  daily(days: 7) { date messages users joins leaves }
  activeUsers { day week month } hourly
  period { start end totalMessages uniqueUsers messagesToday messagesThisWeek joins leaves }
  previousPeriod { start end totalMessages uniqueUsers messagesToday messagesThisWeek }
  chats { chatId title type messages users totalMessages } } }"""


def at(moment: datetime, update: dict) -> dict:
    """The update with its message (or chat_member) dated `moment`."""
    for key in ("message", "channel_post", "chat_member", "edited_message"):
        if key in update:
            update[key]["date"] = int(moment.timestamp())
    return update


@pytest.fixture
async def stats(app, telegram):
    """A pro user with a bot and analytics installed, and the app's clock fixed at NOW."""
    app.platform.clock = lambda: NOW
    owner = await app.create_user("stats@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    return owner, bot


async def summary(app, owner, **variables) -> dict:
    return (await app.graphql(SUMMARY, variables, user=owner))["analytics"]


async def test_null_without_the_plugin_and_zeros_before_the_first_message(app, telegram):
    app.platform.clock = lambda: NOW
    owner = await app.create_user("new@example.com", "pro")
    assert (await app.graphql("{ analytics { totalMessages } }", user=owner))["analytics"] is None
    await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    figures = await summary(app, owner)
    assert figures["totalMessages"] == 0 and figures["uniqueUsers"] == 0
    assert [d["messages"] for d in figures["daily"]] == [0] * 7
    assert figures["hourly"] == [0] * 24 and figures["chats"] == []


async def test_messages_users_and_the_daily_series(app, stats):
    owner, bot = stats
    updates = [
        at(NOW, message_update(1, chat_id=-1, sender_id=10)),
        at(NOW, message_update(2, chat_id=-1, sender_id=11)),
        at(NOW - DAY, message_update(3, chat_id=-1, sender_id=10)),
        at(NOW - 3 * DAY, message_update(4, chat_id=-2, sender_id=12)),
        at(NOW - 20 * DAY, message_update(5, chat_id=-2, sender_id=13)),
        at(NOW, channel_post_update(6, chat_id=-3)),
    ]
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)

    figures = await summary(app, owner)
    assert figures["totalMessages"] == figures["messagesReceived"] == 6
    assert figures["messagesSent"] == 0
    assert figures["uniqueUsers"] == 4  # a channel post is a message, never a user
    assert figures["messagesToday"] == 3
    assert figures["messagesThisWeek"] == 5
    assert [d["date"] for d in figures["daily"]] == [(NOW - n * DAY).date().isoformat() for n in range(6, -1, -1)]
    assert [d["messages"] for d in figures["daily"]] == [0, 0, 0, 1, 0, 1, 3]
    assert [d["users"] for d in figures["daily"]] == [0, 0, 0, 1, 0, 1, 2]
    assert figures["activeUsers"] == {"day": 2, "week": 3, "month": 4}
    assert figures["hourly"][12] == 5 and sum(figures["hourly"]) == 5  # the 7-day window
    assert figures["previousPeriod"]["messagesToday"] == 1  # yesterday
    assert figures["chats"][0] == {
        "chatId": "-1",
        "title": "Test chat",
        "type": "supergroup",
        "messages": 3,
        "users": 2,
        "totalMessages": 3,
    }


async def test_the_previous_period_is_the_window_before(app, stats):
    owner, bot = stats
    for n, days_ago in enumerate([0, 1, 8, 9, 10, 20], start=1):
        await deliver(app, bot, at(NOW - days_ago * DAY, message_update(n, chat_id=-1, sender_id=100 + n)))
    await wait_until_processed(app)
    figures = await summary(app, owner, days=7)
    assert figures["period"]["totalMessages"] == 2 and figures["period"]["uniqueUsers"] == 2
    previous = figures["previousPeriod"]
    assert previous["start"] == (NOW - 13 * DAY).date().isoformat()
    assert previous["end"] == (NOW - 7 * DAY).date().isoformat()
    assert previous["totalMessages"] == 3 and previous["uniqueUsers"] == 3
    assert previous["messagesThisWeek"] == 3  # the 7 days before the last 7


async def test_a_summarys_fields_share_their_reads_and_agree_with_separate_reads(app, stats):
    owner, bot = stats
    for n, days_ago in enumerate([0, 0, 1, 6, 7, 13, 14, 29, 30, 59, 61], start=1):
        await deliver(
            app, bot, at(NOW - days_ago * DAY, message_update(n, chat_id=-(n % 3) - 1, sender_id=100 + n % 5))
        )
    await wait_until_processed(app)
    today = NOW.date()
    with app.db():
        (install_id,) = await UserPlugin.filter(user_id=owner.id).values_list("id", flat=True)
    reader = AnalyticsReader(install_id)
    for days in (1, 7, 30):
        with counting_queries() as statements:
            figures = await summary(app, owner, days=days)
        # One read of the open days (and the chats) for every window, one of the hours of day, and
        # the first time, one roll-up of the closed days not rolled up yet.
        assert sum("analytics_buckets" in s for s in statements) <= 3
        with counting_queries() as statements:
            assert await summary(app, owner, days=days) == figures
        assert sum("analytics_buckets" in s for s in statements) == 2
        assert sum("analytics_closed_days" in s for s in statements) == 1
        with app.db():
            window = Window.ending(today, days)
            period = await app.platform.analytics.period(reader, window, today)
            previous = await app.platform.analytics.previous_period(reader, window)
            active = await app.platform.analytics.active_users(reader, today)
            assert figures["messagesToday"] == (await reader.counts(Window(today, today))).messages
            assert figures["messagesThisWeek"] == (await reader.counts(Window.ending(today, 7))).messages
            assert [d["messages"] for d in figures["daily"]] == [
                d.counts.messages for d in await reader.daily(Window.ending(today, 7))
            ]
        assert figures["activeUsers"] == {"day": active.day, "week": active.week, "month": active.month}
        assert (figures["period"]["totalMessages"], figures["period"]["uniqueUsers"]) == (
            period.counts.messages,
            period.unique_users,
        )
        assert [
            figures["previousPeriod"][k] for k in ("totalMessages", "uniqueUsers", "messagesToday", "messagesThisWeek")
        ] == [previous.counts.messages, previous.unique_users, previous.messages_today, previous.messages_this_week]
        assert figures["period"]["messagesThisWeek"] == period.messages_this_week


async def test_edits_are_not_messages_and_bots_are_not_users(app, stats):
    owner, bot = stats
    edited = at(NOW, message_update(1, chat_id=-1, sender_id=10))
    edited["edited_message"] = edited.pop("message")
    from_bot = at(NOW, message_update(2, chat_id=-1))
    from_bot["message"]["from"] = user(55, "Bot", is_bot=True)
    anonymous = at(NOW, message_update(3, chat_id=-1, sender_id=1087968824))
    anonymous["message"]["sender_chat"] = {"id": -1, "type": "supergroup", "title": "Test chat"}
    for update in (edited, from_bot, anonymous):
        # Analytics does not ask for edits; one queued under an earlier registration still comes.
        assert (await deliver(app, bot, update, lenient=True)).status_code == 200
    await wait_until_processed(app)
    figures = await summary(app, owner)
    assert figures["totalMessages"] == 2 and figures["uniqueUsers"] == 0


async def test_joins_and_leaves_come_from_chat_member_updates_only(app, stats, telegram):
    owner, bot = stats
    assert "chat_member" in telegram.bot(bot.token).allowed_updates  # asked of Telegram for analytics
    updates = [
        at(NOW, chat_member_update(1, chat_member("left", 5), chat_member("member", 5), chat_id=-1)),
        at(NOW, chat_member_update(2, chat_member("kicked", 6), chat_member("member", 6), chat_id=-1)),
        at(NOW, chat_member_update(3, chat_member("member", 5), chat_member("left", 5), chat_id=-1)),
        at(NOW, chat_member_update(4, chat_member("member", 7), chat_member("administrator", 7), chat_id=-1)),
        at(NOW, new_members_update(5, user(8), chat_id=-1)),  # a service message: a message, not a join
    ]
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    today = (await summary(app, owner))["daily"][-1]
    assert (today["joins"], today["leaves"], today["messages"]) == (2, 1, 1)


async def test_user_tracking_off_stores_no_user_ids(app, telegram):
    app.platform.clock = lambda: NOW
    owner = await app.create_user("private@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics", {"trackUsers": False})
    await deliver(app, bot, at(NOW, message_update(1, chat_id=-1, sender_id=10)))
    await wait_until_processed(app)
    figures = await summary(app, owner)
    assert figures["totalMessages"] == 1 and figures["uniqueUsers"] == 0
    with app.db():
        assert await AnalyticsUserDay.all().count() == 0


async def test_one_chat_and_isolation_between_users(app, stats, telegram):
    owner, bot = stats
    other = await app.create_user("other@example.com", "pro")
    other_bot = await connect_bot(app, other, telegram, username="other_bot")
    await install(app, other, "analytics")
    await deliver(app, bot, at(NOW, message_update(1, chat_id=-1, sender_id=10)))
    await deliver(app, bot, at(NOW, message_update(2, chat_id=-2, sender_id=11)))
    await deliver(app, other_bot, at(NOW, message_update(1, chat_id=-1, sender_id=12)))
    await wait_until_processed(app)
    one_chat = await summary(app, owner, chatId="-1")
    assert one_chat["totalMessages"] == 1 and [c["chatId"] for c in one_chat["chats"]] == ["-1"]
    assert (await summary(app, owner))["totalMessages"] == 2
    assert (await summary(app, other))["totalMessages"] == 1


async def test_bad_arguments_are_refused_with_a_code(app, stats):
    owner, _ = stats
    for variables in ({"days": 0}, {"days": 100_000}, {"chatId": "x"}, {"chatId": "9" * 30}):
        error = await app.graphql_error(SUMMARY, variables, user=owner)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", variables
    assert (await app.graphql_error("{ analytics { totalMessages } }"))["extensions"]["code"] == "UNAUTHENTICATED"


# Digits str.isdigit() or int() take that are not ASCII: fullwidth, Arabic-Indic, superscript.
NOT_ASCII_NUMBERS = ("\uff11", "\uff13\uff10", "\u0663", "\u00b2", "1\uff10")


async def test_numbers_are_ascii_digits_only(app, stats):
    owner, bot = stats
    await deliver(app, bot, at(NOW, message_update(1, chat_id=-12, sender_id=10)))
    await wait_until_processed(app)
    for number in NOT_ASCII_NUMBERS:
        for variables in ({"days": number}, {"chatId": number}, {"chatId": "-" + number}):
            error = await app.graphql_error(SUMMARY, variables, user=owner)
            assert error["extensions"]["code"] == "BAD_USER_INPUT", variables
        for query in (f"days={number}", f"chatId={number}", f"chatId=-{number}", f"table=chats&chatId=-{number}"):
            response = await app.http.get(
                "/analytics.csv", params=dict(p.split("=") for p in query.split("&")), headers=owner.auth
            )
            assert response.status_code == 400, (query, response.text)
            assert "must be" in response.json()["error"]
    assert (await app.http.get("/analytics.csv?chatId=--12", headers=owner.auth)).status_code == 400
    # The same numbers in ASCII are fine.
    assert (await summary(app, owner, chatId="-12", days=30))["totalMessages"] == 1
    assert (await app.http.get("/analytics.csv?days=30&chatId=-12", headers=owner.auth)).status_code == 200


async def test_hundreds_of_parallel_webhooks_count_exactly_across_two_app_instances(make_app, telegram):
    first = await make_app()
    second = await make_app()  # same database: a second process
    first.platform.clock = second.platform.clock = lambda: NOW
    owner = await first.create_user("busy@example.com", "pro")
    bot = await connect_bot(first, owner, telegram)
    await install(first, owner, "analytics")
    updates = [at(NOW, message_update(n, chat_id=-1, sender_id=n % 50)) for n in range(1, 301)]
    responses = await asyncio.gather(
        *(deliver(first if n % 2 else second, bot, u) for n, u in enumerate(updates)),
        *(deliver(second, bot, u) for u in updates[:100]),  # redeliveries, counted once
    )
    assert all(r.status_code == 200 for r in responses)
    await wait_until_processed(first)
    figures = await summary(first, owner)
    assert figures["totalMessages"] == 300
    assert figures["uniqueUsers"] == 50
    assert figures["activeUsers"]["day"] == 50


async def test_retention_prunes_days_hours_and_users_but_keeps_totals(app, stats):
    owner, bot = stats
    await deliver(app, bot, at(NOW - 40 * DAY, message_update(1, chat_id=-1, sender_id=10)))
    await deliver(app, bot, at(NOW, message_update(2, chat_id=-1, sender_id=11)))
    await wait_until_processed(app)
    with app.db():
        assert await app.platform.scheduler.fire_due(NOW.timestamp()) >= 1
        kept_from = bucket_of(datetime.combine((NOW - 29 * DAY).date(), datetime.min.time(), UTC))
        assert await AnalyticsBucket.filter(bucket__lt=kept_from).count() == 0
        assert await AnalyticsUserDay.filter(day__lt=kept_from // 96).count() == 0
    figures = await summary(app, owner)
    assert figures["totalMessages"] == 2  # lifetime totals stay
    assert figures["uniqueUsers"] == 1  # only users within retention


async def test_csv_export_needs_the_token_in_a_header(app, stats):
    owner, bot = stats
    await deliver(app, bot, at(NOW, message_update(1, chat_id=-1, sender_id=10)))
    await deliver(app, bot, at(NOW - DAY, message_update(2, chat_id=-1, sender_id=11)))
    await wait_until_processed(app)
    response = await app.http.get("/analytics.csv?days=3", headers=owner.auth)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["date", "messages", "received", "sent", "users", "joins", "leaves"]
    assert [r[:2] for r in rows[1:]] == [
        [(NOW - n * DAY).date().isoformat(), m] for n, m in ((2, "0"), (1, "1"), (0, "1"))
    ]
    chats = list(csv.reader(io.StringIO((await app.http.get("/analytics.csv?table=chats", headers=owner.auth)).text)))
    assert chats[1][:4] == ["-1", "Test chat", "supergroup", "2"]
    assert (await app.http.get(f"/analytics.csv?token={owner.token}")).status_code == 401
    assert (await app.http.get("/analytics.csv?days=-1", headers=owner.auth)).status_code == 400
    assert (await app.http.get("/analytics.csv?table=x", headers=owner.auth)).status_code == 400
