"""Query.analytics(from, to), the install's `timezone` over GraphQL, the CSV and the live
subscription: any range within retention, in the install's zone, with clear errors for the rest."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from app.analytics.buckets import bucket_of
from app.analytics.models import AnalyticsBucket, AnalyticsSeen, AnalyticsUserDay
from tests.support.installs_api import my_install, plugin_id, update_config
from tests.support.rows import all_rows
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import message_update

# 19:00 UTC on 15 June: already 16 June (00:30) in Kolkata.
NOW = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
RANGE = """query($days: Int, $from: Date, $to: Date, $chatId: ID) {
  analytics(days: $days, from: $from, to: $to, chatId: $chatId) {
    timezone totalMessages messagesToday
    daily { date messages users } hourly
    period { start end totalMessages uniqueUsers }
    previousPeriod { start end totalMessages uniqueUsers } } }"""


def at(moment: datetime, update: dict[str, Any]) -> dict[str, Any]:
    update["message"]["date"] = int(moment.timestamp())
    return update


@pytest.fixture
async def counted(app, telegram):
    """Messages at 18:10 and 18:40 UTC on 13 and 15 June (18:10 is before Kolkata's midnight,
    18:40 after), by users 1 and 2; the clock at NOW; retention 30 days."""
    app.platform.clock = lambda: NOW
    owner = await app.create_user("ranges@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    update_id = 0
    for day in (13, 15):
        for minute, user in ((10, 1), (40, 2)):
            update_id += 1
            moment = datetime(2026, 6, day, 18, minute, tzinfo=UTC)
            await deliver(app, bot, at(moment, message_update(update_id, chat_id=-1, sender_id=user)))
    await wait_until_processed(app)
    return owner


async def query(app, owner, **variables) -> dict[str, Any]:
    return (await app.graphql(RANGE, variables, user=owner))["analytics"]


async def test_from_to_covers_exactly_those_days_in_utc_and_the_previous_period_is_as_long(app, counted):
    figures = await query(app, counted, **{"from": "2026-06-12", "to": "2026-06-14"})
    assert figures["timezone"] == "UTC"
    assert [(d["date"], d["messages"], d["users"]) for d in figures["daily"]] == [
        ("2026-06-12", 0, 0),
        ("2026-06-13", 2, 2),
        ("2026-06-14", 0, 0),
    ]
    assert (figures["period"]["start"], figures["period"]["end"], figures["period"]["totalMessages"]) == (
        "2026-06-12",
        "2026-06-14",
        2,
    )
    assert figures["period"]["uniqueUsers"] == 2
    assert (figures["previousPeriod"]["start"], figures["previousPeriod"]["end"]) == ("2026-06-09", "2026-06-11")
    assert figures["hourly"][18] == 2 and sum(figures["hourly"]) == 2
    assert figures["messagesToday"] == 2  # today is the clock's, whatever the range


async def test_changing_the_zone_re_reads_history(app, counted):
    before = await query(app, counted, **{"from": "2026-06-13", "to": "2026-06-16"})
    assert [d["messages"] for d in before["daily"]] == [2, 0, 2, 0]
    assert (await update_config(app, counted, "analytics", {"timezone": "Asia/Kolkata"}))["status"] == "ACTIVE"
    after = await query(app, counted, **{"from": "2026-06-13", "to": "2026-06-16"})
    assert after["timezone"] == "Asia/Kolkata"
    # 18:10 UTC is 23:40 the same day in Kolkata, 18:40 UTC is 00:10 the next.
    assert [(d["date"], d["messages"], d["users"]) for d in after["daily"]] == [
        ("2026-06-13", 1, 1),
        ("2026-06-14", 1, 1),
        ("2026-06-15", 1, 1),
        ("2026-06-16", 1, 1),
    ]
    assert after["hourly"][23] == 2 and after["hourly"][0] == 2
    # Today is 16 June there: the default window is the 7 days ending on it.
    default = await query(app, counted)
    assert default["daily"][-1]["date"] == "2026-06-16" and default["messagesToday"] == 1
    assert default["period"]["uniqueUsers"] == 2


@pytest.mark.parametrize(
    ("variables", "path"),
    [
        ({"days": 7, "from": "2026-06-01", "to": "2026-06-02"}, "/days"),
        ({"from": "2026-06-01"}, "/to"),
        ({"to": "2026-06-01"}, "/from"),
        ({"from": "2026-06-10", "to": "2026-06-09"}, "/to"),
        ({"from": "2026-06-10", "to": "2026-06-17"}, "/to"),  # after tomorrow
        ({"from": "2026-05-16", "to": "2026-06-10"}, "/from"),  # before the 30 days retention keeps
        ({"days": 0}, "/days"),
    ],
)
async def test_a_range_it_cannot_answer_is_refused_with_its_field(app, counted, variables, path):
    before = await all_rows(app)
    error = await app.graphql_error(RANGE, variables, user=counted)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert [e["path"] for e in error["extensions"]["errors"]] == [path]
    assert await all_rows(app) == before


async def test_the_longest_range_retention_keeps_and_tomorrow_are_answered(app, counted):
    figures = await query(app, counted, **{"from": "2026-05-17", "to": "2026-06-16"})
    assert len(figures["daily"]) == 31 and figures["period"]["totalMessages"] == 4
    await update_config(app, counted, "analytics", {"retention": 90})
    assert len((await query(app, counted, **{"from": "2026-03-18", "to": "2026-06-15"}))["daily"]) == 90


async def test_an_unknown_zone_is_refused_and_nothing_changes(app, counted):
    before = await all_rows(app)
    for zone in ("Mars/Olympus", "Asia/Calcutta ", "", "../etc/passwd", 5):
        variables = {"id": await plugin_id(app, "analytics"), "config": {"timezone": zone}}
        result = await app.graphql_response(
            "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { id } }",
            variables,
            counted,
        )
        [error] = result["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", zone
        assert [e["path"] for e in error["extensions"]["errors"]] == ["/timezone"]
    assert await all_rows(app) == before


async def test_the_csv_takes_a_range_in_the_zone(app, counted):
    await update_config(app, counted, "analytics", {"timezone": "Asia/Kolkata"})
    response = await app.http.get("/analytics.csv?from=2026-06-14&to=2026-06-15", headers=counted.auth)
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [r[:2] for r in rows[1:]] == [["2026-06-14", "1"], ["2026-06-15", "1"]]
    for bad in (
        "from=2026-06-14",
        "from=2026-06-15&to=2026-06-14",
        "from=x&to=2026-06-14",
        "days=3&from=2026-06-14&to=2026-06-15",
    ):
        response = await app.http.get(f"/analytics.csv?{bad}", headers=counted.auth)
        assert response.status_code == 400, bad


async def test_the_subscription_takes_a_range(app, counted, telegram):
    live_query = """subscription($from: Date, $to: Date) { analyticsUpdated(from: $from, to: $to) {
      timezone daily { date messages } } }"""
    async with subscribe(app.url, live_query, {"from": "2026-06-14", "to": "2026-06-15"}, token=counted.token) as live:
        first = (await live.next())["analyticsUpdated"]
        assert first["timezone"] == "UTC"
        assert [(d["date"], d["messages"]) for d in first["daily"]] == [("2026-06-14", 0), ("2026-06-15", 2)]
    async with subscribe(app.url, live_query, {"from": "2026-06-15"}, token=counted.token) as refused:
        message = await refused.message()
    assert message["type"] in ("error", "next"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_open_subscription_follows_a_zone_change(app, counted):
    live_query = """subscription { analyticsUpdated(days: 4) { timezone daily { date messages } } }"""
    async with subscribe(app.url, live_query, token=counted.token) as live:
        first = (await live.next())["analyticsUpdated"]
        assert first["timezone"] == "UTC"
        assert [d["messages"] for d in first["daily"]] == [0, 2, 0, 2]  # 12 to 15 June
        assert (await update_config(app, counted, "analytics", {"timezone": "Asia/Kolkata"}))["status"] == "ACTIVE"
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["timezone"] == "Asia/Kolkata")
    # 18:10 UTC is 23:40 the same day in Kolkata, 18:40 UTC 00:10 the next; today there is 16 June.
    assert [(d["date"], d["messages"]) for d in data["analyticsUpdated"]["daily"]] == [
        ("2026-06-13", 1),
        ("2026-06-14", 1),
        ("2026-06-15", 1),
        ("2026-06-16", 1),
    ]


async def test_retention_prunes_whole_days_of_the_zone(app, counted):
    """Retention 2 in Kolkata on 16 June there: 15 and 16 June are kept, from 18:30 UTC on 14 June."""
    await update_config(app, counted, "analytics", {"timezone": "Asia/Kolkata", "retention": 2})
    with app.db():
        assert await app.platform.scheduler.fire_due(NOW.timestamp()) >= 1
        kept_from = bucket_of(datetime(2026, 6, 14, 18, 30, tzinfo=UTC))
        buckets = await AnalyticsBucket.all().values_list("bucket", flat=True)
        assert sorted(buckets) == [bucket_of(datetime(2026, 6, 15, 18, m, tzinfo=UTC)) for m in (10, 40)]
        assert all(b >= kept_from for b in buckets)
        assert await AnalyticsSeen.filter(last_bucket__lt=kept_from).count() == 0
        assert set(await AnalyticsUserDay.all().values_list("day", flat=True)) == {kept_from // 96 + 1}
    # A user seen before the kept local midnight, on the UTC day it falls in, is forgotten there.
    with app.db():
        user_day = AnalyticsUserDay(install_id=(await my_install(app, counted, "analytics"))["id"], chat_id=0)
        user_day.day, user_day.user_id = kept_from // 96, 9
        user_day.quarters_low, user_day.quarters_high = 1 << 3, 1 << (kept_from % 96 - 48)  # 00:45 and 18:30
        await user_day.save()
        assert await app.platform.scheduler.fire_due(NOW.timestamp() + 3600) >= 1
        [kept] = await AnalyticsUserDay.filter(user_id=9).values_list("quarters_low", "quarters_high")
        assert kept == (0, 1 << (kept_from % 96 - 48))
    figures = await query(app, counted, **{"from": "2026-06-15", "to": "2026-06-16"})
    assert [d["messages"] for d in figures["daily"]] == [1, 1]
    assert figures["totalMessages"] == 4  # lifetime totals stay


async def test_a_live_summary_in_a_zone_follows_each_write(app, telegram):
    app.platform.clock = lambda: NOW
    owner = await app.create_user("live-zone@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics", {"timezone": "Asia/Kolkata"})
    live_query = """subscription($from: Date, $to: Date) { analyticsUpdated(from: $from, to: $to) {
      timezone messagesToday daily { date messages } } }"""
    async with subscribe(app.url, live_query, {"from": "2026-06-15", "to": "2026-06-16"}, token=owner.token) as live:
        first = (await live.next())["analyticsUpdated"]
        assert (first["timezone"], first["messagesToday"]) == ("Asia/Kolkata", 0)
        # 18:40 UTC on 15 June is 00:10 on 16 June in Kolkata: today there.
        moment = datetime(2026, 6, 15, 18, 40, tzinfo=UTC)
        assert (await deliver(app, bot, at(moment, message_update(1, chat_id=-1, sender_id=5)))).status_code == 200
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["messagesToday"] == 1)
    assert [(d["date"], d["messages"]) for d in data["analyticsUpdated"]["daily"]] == [
        ("2026-06-15", 0),
        ("2026-06-16", 1),
    ]


async def test_a_value_that_is_not_a_date_is_refused(app, counted):
    for value in ("2026-13-01", "yesterday", "2026-6-1", 5):
        error = await app.graphql_error(RANGE, {"from": value, "to": "2026-06-10"}, user=counted)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", value
