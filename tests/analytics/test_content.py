"""analytics.content: received messages by kind in the window, as the independent model
(tests/analytics/model.py) computes them from the same updates; never any text in the tables."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from tortoise.models import Model

from app.analytics import models, posting_models
from tests.analytics.model import expected_content, expected_posters
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import ConnectedBot, connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import channel_post_update, message, new_members_update, user
from tests.support.update_corpus import CONTENT

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)
CONTENT_QUERY = "query($chatId: ID, $days: Int) { analytics(chatId: $chatId, days: $days) { content { kind count } } }"


def dated(moment: datetime, update: dict[str, Any]) -> dict[str, Any]:
    for key in ("message", "channel_post"):
        if key in update:
            update[key]["date"] = int(moment.timestamp())
    return update


def posted(update_id: int, moment: datetime, chat_id: int = -1, sender: int = 10, **fields: Any) -> dict[str, Any]:
    value = message(chat_id, "supergroup", **{"from": user(sender), **fields})
    return dated(moment, {"update_id": update_id, "message": value})


def window(days: int) -> tuple[datetime, datetime]:
    """The UTC instants a window of `days` ending on NOW's date covers."""
    end = datetime.combine(NOW.date() + DAY, time(), tzinfo=UTC)
    return end - days * DAY, end


@pytest.fixture
async def stats(app: LiveApp, telegram) -> tuple[TestUser, ConnectedBot]:
    app.platform.clock = lambda: NOW
    owner = await app.create_user("content@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    return owner, bot


async def delivered(app: LiveApp, bot: ConnectedBot, updates: list[dict[str, Any]]) -> None:
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)


def a_mix() -> list[dict[str, Any]]:
    """A message of every kind of the corpus, text, joins, channel posts, in two chats and across
    the window's edges."""
    start, _ = window(7)
    updates = [
        posted(n, NOW - (n % 9) * timedelta(hours=7), chat_id=-1 - n % 2, sender=10 + n % 4, **fields)
        for n, fields in enumerate(CONTENT, start=1)
    ]
    n = len(updates)
    updates += [
        posted(n + 1, NOW, text="hello"),
        posted(n + 2, start, text="the window's first instant"),
        posted(n + 3, start - timedelta(seconds=1), text="the instant before it"),
        posted(n + 4, NOW - 9 * DAY, **CONTENT[0]),
        dated(NOW, new_members_update(n + 5, user(30), chat_id=-1)),
        dated(NOW - DAY, channel_post_update(n + 6, chat_id=-3)),
    ]
    return updates


async def test_content_counts_each_kind_as_aiogram_reads_the_same_messages(app, stats):
    owner, bot = stats
    updates = a_mix()
    await delivered(app, bot, updates)
    for days in (1, 7, 30):
        for chat_id in (None, -1, -2):
            variables = {"days": days, "chatId": None if chat_id is None else str(chat_id)}
            got = (await app.graphql(CONTENT_QUERY, variables, user=owner))["analytics"]["content"]
            assert got == expected_content(updates, *window(days), chat_id), (days, chat_id)
    week = {c["kind"]: c["count"] for c in expected_content(updates, *window(7))}
    assert all(count > 0 for count in week.values()), week  # every kind was there to be counted


async def test_every_kind_is_listed_with_zeros_before_any_message(app, stats):
    owner, _ = stats
    got = (await app.graphql(CONTENT_QUERY, {}, user=owner))["analytics"]["content"]
    assert [c["count"] for c in got] == [0] * 14
    assert [c["kind"] for c in got][:3] == ["TEXT", "PHOTO", "VIDEO"]


async def test_a_sent_message_is_not_content_and_an_edit_is_not_a_message(app, stats):
    owner, bot = stats
    edited = posted(1, NOW, text="edited")
    edited["edited_message"] = edited.pop("message")
    assert (await deliver(app, bot, edited, lenient=True)).status_code == 200
    await wait_until_processed(app)
    got = (await app.graphql(CONTENT_QUERY, {}, user=owner))["analytics"]["content"]
    assert sum(c["count"] for c in got) == 0


def analytics_models() -> list[type[Model]]:
    """Every table of Channel Analytics, a table added later too."""
    found = [*vars(models).values(), *vars(posting_models).values()]
    return [m for m in found if inspect.isclass(m) and issubclass(m, Model) and m is not Model]


async def test_no_table_of_analytics_ever_holds_a_messages_text(app, stats):
    owner, bot = stats
    marker = "MARKER-7f3a"
    updates = [
        posted(1, NOW, text=f"secret {marker} words"),
        posted(2, NOW, caption=f"a {marker} caption", **CONTENT[-1]),
        posted(3, NOW, sender=11, text=marker),
    ]
    await delivered(app, bot, updates)
    assert (await app.graphql(CONTENT_QUERY, {}, user=owner))["analytics"]["content"][0] == {"kind": "TEXT", "count": 2}
    assert expected_posters(updates, *window(7))[0]["messages"] == 2  # the counting did happen
    tables = analytics_models()
    assert {"analytics_content", "analytics_poster_names", "analytics_chats"} <= {m._meta.db_table for m in tables}
    with app.db() as ctx:
        conn = ctx.db()
        for model in tables:
            rows = await conn.execute_query_dict(f'SELECT * FROM "{model._meta.db_table}"')
            assert all(marker not in str(value) for row in rows for value in row.values()), model._meta.db_table
            assert all("secret" not in str(value) for row in rows for value in row.values())
