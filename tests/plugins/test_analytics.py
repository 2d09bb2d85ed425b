"""Channel Analytics counts what its owner's bot sees, and forgets daily figures past retention."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from app.plugins.handlers.analytics import AnalyticsHandler, day_of
from tests.support.plugins import FailingPlugin
from tests.support.runtime import connect_bot, deliver, install, stored, wait_until_processed
from tests.support.telegram_updates import channel_post_update, message_update

DAY = 86_400


async def test_messages_and_distinct_users_are_counted_per_chat(app, telegram):
    owner = await app.create_user("stats@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    analytics = await install(app, owner, "analytics")
    for n, sender in enumerate([1, 2, 1, 3], start=1):
        await deliver(app, bot, message_update(n, chat_id=-7, sender_id=sender))
    await deliver(app, bot, channel_post_update(5, chat_id=-8))
    await wait_until_processed(app)

    assert await stored(app, analytics.id, "chat:-7:messages") == 4
    assert await stored(app, analytics.id, "chat:-7:users") == 3
    assert await stored(app, analytics.id, "chat:-8:messages") == 1
    assert await stored(app, analytics.id, "chats") == [-8, -7]


async def test_user_tracking_can_be_turned_off(app, telegram):
    owner = await app.create_user("private@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    analytics = await install(app, owner, "analytics", {"trackUsers": False})
    await deliver(app, bot, message_update(1, chat_id=-7, sender_id=1))
    await wait_until_processed(app)
    assert await stored(app, analytics.id, "chat:-7:messages") == 1
    assert await stored(app, analytics.id, "chat:-7:users") is None
    assert await stored(app, analytics.id, "chat:-7:user:1") is None


async def test_the_hourly_prune_drops_days_past_retention(make_app, telegram):
    live = await make_app(handlers=[AnalyticsHandler()])
    owner = await live.create_user("prune@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    analytics = await install(live, owner, "analytics", {"retention": 7})
    now = time.time()
    old, recent = message_update(1, chat_id=-9), message_update(2, chat_id=-9)
    old["message"]["date"] = int(now - 30 * DAY)
    await deliver(live, bot, old)
    await deliver(live, bot, recent)
    await wait_until_processed(live)
    old_day, today = day_of_ts(now - 30 * DAY), day_of_ts(now)
    assert await stored(live, analytics.id, f"chat:-9:day:{old_day}") == 1

    with live.db():
        assert await live.platform.scheduler.fire_due(now) == 1

    assert await stored(live, analytics.id, f"chat:-9:day:{old_day}") is None
    assert await stored(live, analytics.id, f"chat:-9:day:{today}") == 1
    assert await stored(live, analytics.id, "chat:-9:days") == [today]
    assert await stored(live, analytics.id, "chat:-9:messages") == 2  # totals are kept


async def test_plugin_log_lines_name_the_plugin_and_user(make_app, telegram, caplog):
    live = await make_app(handlers=[FailingPlugin()])
    owner = await live.create_user("logs@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install(live, owner, "failing")
    with caplog.at_level(logging.WARNING, logger="app.plugins"):
        await deliver(live, bot, message_update(1))
        await wait_until_processed(live)
    assert f"[failing user={owner.id}] plugin run failed: RuntimeError: boom" in caplog.text


def day_of_ts(timestamp: float) -> str:
    return day_of(datetime.fromtimestamp(timestamp, timezone.utc))
