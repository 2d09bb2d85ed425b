"""A roll-up that cannot be stored (SQLite's file locked by another writer) still answers the
summary exactly, changes nothing, and is stored by the next summary once the lock is gone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from app.analytics.models import AnalyticsClosedDay
from tests.support.outage import short_busy_timeout, sqlite_locked
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
SUMMARY = "{ analytics(days: 7) { daily { date messages users } hourly } }"


async def test_a_roll_up_not_stored_still_answers_and_is_stored_later(app, telegram, backend, database_url, caplog):
    if backend == "postgres":
        pytest.skip("PostgreSQL makes a write wait for a lock; only SQLite's fails as locked")
    app.platform.clock = lambda: NOW
    owner = await app.create_user("locked@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    analytics = await install(app, owner, "analytics")
    update = message_update(1, chat_id=-1001, sender_id=10)
    update["message"]["date"] = int((NOW - timedelta(days=3)).timestamp())
    assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)

    with app.db() as db:
        await short_busy_timeout(db)
    with caplog.at_level(logging.WARNING, logger="app.analytics.closed_days"):
        async with sqlite_locked(database_url):
            locked = (await app.graphql(SUMMARY, user=owner))["analytics"]
    assert [(d["date"], d["messages"]) for d in locked["daily"]][3] == ("2026-06-12", 1)
    assert f"closed days of install {analytics.id} not stored" in caplog.text
    with app.db():
        assert await AnalyticsClosedDay.filter(install_id=analytics.id).count() == 0

    assert (await app.graphql(SUMMARY, user=owner))["analytics"] == locked
    with app.db():
        assert await AnalyticsClosedDay.filter(install_id=analytics.id).count() > 0
