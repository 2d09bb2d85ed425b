"""Channel Analytics as a plugin: what it counts lands in its tables once per event, and its
hourly schedule forgets what retention no longer keeps. (Its figures over GraphQL: tests/analytics.)"""

from __future__ import annotations

import logging
import time

from app.analytics.models import AnalyticsBucket
from app.plugins.handlers.analytics import AnalyticsHandler
from tests.support.plugins import FailingPlugin
from tests.support.runtime import analytics_counts, connect_bot, deliver, install, wait_until_processed
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

    assert await analytics_counts(app, analytics.id, -7) == {"received": 4, "sent": 0, "messages": 4, "users": 3}
    assert await analytics_counts(app, analytics.id, -8) == {"received": 1, "sent": 0, "messages": 1, "users": 0}


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
    with live.db():
        assert await AnalyticsBucket.filter(install_id=analytics.id).count() == 2
        # prune, the daily member counts, and the reads of chats due one (a run for no install)
        assert await live.platform.scheduler.fire_due(now) == 3
        assert await AnalyticsBucket.filter(install_id=analytics.id).count() == 1
    assert (await analytics_counts(live, analytics.id, -9))["messages"] == 2  # totals are kept


async def test_plugin_log_lines_name_the_plugin_and_user(make_app, telegram, caplog):
    live = await make_app(handlers=[FailingPlugin()])
    owner = await live.create_user("logs@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install(live, owner, "failing")
    with caplog.at_level(logging.WARNING, logger="app.plugins"):
        await deliver(live, bot, message_update(1))
        await wait_until_processed(live)
    assert f"[failing user={owner.id}] plugin run failed: RuntimeError: boom" in caplog.text
