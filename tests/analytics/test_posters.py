"""analytics.topPosters: users by messages in any window, exact as the independent model
(tests/analytics/model.py) counts them from the same updates, names as last seen, only with
trackUsers; and the reads over windows of buckets whose days are not UTC's."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.analytics import posters
from app.analytics.buckets import Span, bucket_start, days_span
from app.analytics.posting_models import (
    AnalyticsContent,
    AnalyticsPosterBucket,
    AnalyticsPosterDay,
    AnalyticsPosterName,
)
from tests.analytics.model import expected_content, expected_posters
from tests.analytics.test_content import CONTENT_QUERY, NOW, dated, delivered, window
from tests.support.installs_api import update_config
from tests.support.live import LiveApp
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import channel_post_update, message, message_update

DAY = timedelta(days=1)
POSTERS = """query($chatId: ID, $days: Int, $limit: Int) { analytics(chatId: $chatId, days: $days) {
  topPosters(limit: $limit) { userId firstName username messages } } }"""


def person(user_id: int, first_name: str | None = None, username: str | None = None, is_bot: bool = False) -> dict:
    found: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name or f"User{user_id}"}
    if username is not None:
        found["username"] = username
    return found


def said(update_id: int, moment: datetime, sender: dict, chat_id: int = -1, **fields: Any) -> dict[str, Any]:
    value = message(chat_id, "supergroup", **{"from": sender, "text": "hi", **fields})
    return dated(moment, {"update_id": update_id, "message": value})


async def analytics_owner(app: LiveApp, telegram, config: dict | None = None, email: str = "posters@example.com"):
    app.platform.clock = lambda: NOW
    owner = await app.create_user(email, "pro")
    bot = await connect_bot(app, owner, telegram)
    plugin = await install(app, owner, "analytics", config)
    return owner, bot, plugin.id


async def top(app: LiveApp, owner, **variables: Any) -> list[dict[str, Any]]:
    return (await app.graphql(POSTERS, variables, user=owner))["analytics"]["topPosters"]


def community() -> list[dict[str, Any]]:
    """Six people in two chats over six weeks; a bot, an anonymous admin and a channel post, which
    are no posters; two people with as many messages as each other; a rename, delivered late."""
    rng = random.Random(28)
    updates = []
    ids = iter(range(1, 10_000))
    for user_id, count in ((10, 9), (11, 7), (12, 5), (13, 5), (14, 2), (15, 1)):
        for _ in range(count):
            moment = NOW - timedelta(minutes=rng.randrange(0, 45 * 24 * 60))
            updates.append(
                said(next(ids), moment, person(user_id, username=f"u{user_id}"), chat_id=rng.choice([-1, -2]))
            )
    anonymous = said(
        next(ids), NOW, person(1087968824, "Group", is_bot=True), sender_chat={"id": -1, "type": "supergroup"}
    )
    updates += [
        said(next(ids), NOW, person(99, "Bot", "helper_bot", is_bot=True)),
        anonymous,
        dated(NOW, channel_post_update(next(ids), chat_id=-3)),
        # The newest name is delivered first: an older message arriving later does not bring its name back.
        said(next(ids), NOW - timedelta(hours=1), person(10, "Ada L.")),
        said(next(ids), NOW - timedelta(hours=3), person(10, "Ada", "ada")),
    ]
    return updates


async def test_top_posters_are_the_model_s_in_every_window_and_chat(app, telegram):
    owner, bot, _ = await analytics_owner(app, telegram)
    updates = community()
    await delivered(app, bot, updates)
    for days in (1, 7, 30, 60):
        for chat_id in (None, -1, -2):
            for limit in (1, 3, 50):
                variables = {"days": days, "limit": limit, "chatId": None if chat_id is None else str(chat_id)}
                expected = expected_posters(updates, *window(days), limit, chat_id)
                assert await top(app, owner, **variables) == expected, variables
    everyone = await top(app, owner, days=60, limit=50)
    assert [p["userId"] for p in everyone][:2] == ["10", "11"]
    assert {p["userId"] for p in everyone} == {"10", "11", "12", "13", "14", "15"}  # no bot, no chat
    assert (everyone[0]["firstName"], everyone[0]["username"]) == ("Ada L.", None)  # as last seen
    ties = [p["userId"] for p in everyone if p["messages"] == everyone[2]["messages"]]
    assert ties == sorted(ties, key=int)


async def test_names_follow_the_latest_message_and_are_bounded(app, telegram):
    owner, bot, _ = await analytics_owner(app, telegram)
    updates = [
        said(1, NOW - timedelta(hours=2), person(20, "Old", "old_name")),
        said(2, NOW - timedelta(hours=1), person(20, "N" * 200, "n" * 40)),
    ]
    await delivered(app, bot, updates)
    [poster] = await top(app, owner)
    assert poster == {"userId": "20", "firstName": "N" * 64, "username": "n" * 32, "messages": 2}
    assert [poster] == expected_posters(updates, *window(7))
    await delivered(app, bot, [said(3, NOW, person(20, "Newest"))])
    assert (await top(app, owner))[0]["firstName"] == "Newest"


async def test_with_track_users_off_there_are_no_posters_and_no_names(app, telegram):
    owner, bot, install_id = await analytics_owner(app, telegram, {"trackUsers": False})
    await delivered(app, bot, [said(1, NOW, person(10, "Ada", "ada")), said(2, NOW, person(11))])
    assert await top(app, owner) == []
    with app.db():
        for model in (AnalyticsPosterDay, AnalyticsPosterBucket, AnalyticsPosterName):
            assert await model.filter(install_id=install_id).count() == 0
        assert await AnalyticsContent.filter(install_id=install_id).count() == 1  # it did count


@pytest.mark.parametrize("limit", [0, -1, 51, 1000])
async def test_a_limit_outside_1_to_50_is_refused(app, telegram, limit):
    owner, bot, _ = await analytics_owner(app, telegram)
    await delivered(app, bot, [said(1, NOW, person(10))])
    error = await app.graphql_error(POSTERS, {"limit": limit}, user=owner)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(await top(app, owner, limit=1)) == 1 and len(await top(app, owner, limit=50)) == 1


def test_a_span_splits_into_whole_utc_days_and_its_two_ends():
    day = posters.BUCKETS_PER_DAY
    assert posters.split(Span(3 * day, 5 * day)) == ((3, 5), (3 * day, 3 * day), (5 * day, 5 * day))
    assert posters.split(Span(3 * day - 22, 5 * day + 74)) == ((3, 5), (3 * day - 22, 3 * day), (5 * day, 5 * day + 74))
    assert posters.split(Span(3 * day + 1, 4 * day + 5)) == ((0, 0), (3 * day + 1, 4 * day + 5), (0, 0))
    assert posters.split(Span(7, 7)) == ((0, 0), (7, 7), (0, 0))


async def test_any_span_of_buckets_is_exact_whatever_its_zone(app, telegram):
    """Messages every 97 minutes for ten days, read over the days of zones off UTC by :30 and :45
    and over random spans of buckets: the sums of whole days and edge buckets are the model's."""
    _, bot, install_id = await analytics_owner(app, telegram)
    updates = [said(n, NOW - n * timedelta(minutes=97), person(10 + n % 7), chat_id=-1 - n % 2) for n in range(1, 150)]
    await delivered(app, bot, updates)
    spans = []
    for zone in ("Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "UTC"):
        for first, last in ((NOW.date() - 6 * DAY, NOW.date()), (NOW.date() - DAY, NOW.date() - DAY)):
            spans.append(days_span(first, last, ZoneInfo(zone)))
    rng = random.Random(5)
    end = days_span(NOW.date(), NOW.date(), ZoneInfo("UTC")).end
    for _ in range(20):
        a, b = sorted(rng.randrange(end - 12 * posters.BUCKETS_PER_DAY, end) for _ in range(2))
        spans.append(Span(a, b))
    with app.db():
        for span in spans:
            for chat_id in (None, -2):
                got = await posters.top_posters(install_id, chat_id, span, 50)
                expected = expected_posters(updates, bucket_start(span.first), bucket_start(span.end), 50, chat_id)
                assert [(str(p.user_id), p.messages) for p in got] == [(p["userId"], p["messages"]) for p in expected]


async def test_retention_prunes_posters_content_and_names_not_seen_since(app, telegram):
    _, bot, install_id = await analytics_owner(app, telegram)
    await delivered(app, bot, [said(1, NOW - 40 * DAY, person(10)), said(2, NOW, person(11))])
    with app.db():
        assert await app.platform.scheduler.fire_due(NOW.timestamp()) >= 1
        keep = days_span(NOW.date() - 29 * DAY, NOW.date(), ZoneInfo("UTC")).first
        assert await AnalyticsContent.filter(install_id=install_id, bucket__lt=keep).count() == 0
        assert await AnalyticsPosterBucket.filter(install_id=install_id, bucket__lt=keep).count() == 0
        assert await AnalyticsPosterDay.filter(install_id=install_id).values_list("user_id", flat=True) == [11]
        assert await AnalyticsPosterName.filter(install_id=install_id).values_list("user_id", flat=True) == [11]
        assert await AnalyticsContent.filter(install_id=install_id).count() == 1


async def test_parallel_webhooks_on_two_app_instances_count_content_and_posters_exactly_once(make_app, telegram):
    first = await make_app()
    second = await make_app()  # the same database: a second process
    owner, bot, _ = await analytics_owner(first, telegram)
    second.platform.clock = first.platform.clock
    updates = [said(n, NOW, person(100 + n % 25, username=f"p{n % 25}")) for n in range(1, 201)]
    responses = await asyncio.gather(
        *(deliver(first if n % 2 else second, bot, u) for n, u in enumerate(updates)),
        *(deliver(second, bot, u) for u in updates[:80]),  # redeliveries, counted once
    )
    assert all(r.status_code == 200 for r in responses)
    await wait_until_processed(first)
    assert await top(first, owner, limit=50) == expected_posters(updates, *window(7), 50)
    assert sum(p["messages"] for p in await top(first, owner, limit=50)) == 200
    content = (await first.graphql(CONTENT_QUERY, {}, user=owner))["analytics"]["content"]
    assert content == expected_content(updates, *window(7)) and content[0] == {"kind": "TEXT", "count": 200}


async def test_turning_track_users_off_empties_the_list_at_once_and_stores_no_more(app, telegram):
    owner, bot, install_id = await analytics_owner(app, telegram)
    await delivered(app, bot, [said(1, NOW, person(10, "Ada"))])
    assert [p["userId"] for p in await top(app, owner)] == ["10"]
    await update_config(app, owner, "analytics", {"trackUsers": False})
    assert await top(app, owner) == []
    await delivered(app, bot, [said(2, NOW, person(11, "Grace"))])
    with app.db():
        assert await AnalyticsPosterName.filter(install_id=install_id).values_list("user_id", flat=True) == [10]
    await update_config(app, owner, "analytics", {"trackUsers": True})
    assert await top(app, owner) == [{"userId": "10", "firstName": "Ada", "username": None, "messages": 1}]


LIVE = "subscription { analyticsUpdated { content { kind count } topPosters(limit: 2) { userId firstName messages } } }"


async def test_content_and_top_posters_are_live(app, telegram):
    owner = await app.create_user("live-posters@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    async with subscribe(app.url, LIVE, token=owner.token) as live:
        first = (await live.next())["analyticsUpdated"]
        assert first["topPosters"] == [] and {c["count"] for c in first["content"]} == {0}
        assert (await deliver(app, bot, message_update(1, chat_id=-1, sender_id=5))).status_code == 200
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["topPosters"] != [])
    summary = data["analyticsUpdated"]
    assert summary["topPosters"] == [{"userId": "5", "firstName": "Ada", "messages": 1}]
    assert summary["content"][0] == {"kind": "TEXT", "count": 1}
