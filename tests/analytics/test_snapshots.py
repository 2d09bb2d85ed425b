"""app/analytics/snapshots.py: many installs' summaries read in the same statements are each
install's own, exactly as read alone, and as the reads one at a time (AnalyticsReader) give them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.analytics.reader import AnalyticsReader, Window
from app.analytics.snapshots import SummaryKey, read_snapshots
from tests.support.live import LiveApp
from tests.support.queries import counting_queries
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def at(moment: datetime, update: dict) -> dict:
    update["message"]["date"] = int(moment.timestamp())
    return update


async def owners_with_figures(app: LiveApp, telegram, count: int) -> list[str]:
    """`count` users, each with Channel Analytics and figures of their own (user n: n + 1 times as
    many messages, in two chats, over three weeks); their installs' ids."""
    app.platform.clock = lambda: NOW
    installs = []
    update_id = 0
    for n in range(count):
        owner = await app.create_user(f"snap{n}@example.com", "pro")
        bot = await connect_bot(app, owner, telegram, username=f"snap{n}_bot")
        await install(app, owner, "analytics")
        for repeat in range(n + 1):
            for days_ago, chat, sender in ((0, -1, 10), (0, -2, 11 + n), (1, -1, 12), (9, -2, 13), (20, -1, 14 + n)):
                update_id += 1
                update = at(
                    NOW - days_ago * DAY - repeat * timedelta(hours=1),
                    message_update(update_id, chat_id=chat, sender_id=sender),
                )
                assert (await deliver(app, bot, update)).status_code == 200
        await wait_until_processed(app)
        with app.db():
            service = await app.platform.tokens.authenticate(owner.token)
            assert service is not None
            reader = await app.platform.analytics.reader_for(service)
            assert reader is not None
            installs.append(reader.install_id)
    return installs


async def test_installs_read_together_get_what_each_reads_alone(app: LiveApp, telegram):
    installs = await owners_with_figures(app, telegram, 3)
    today = NOW.date()
    keys = [
        SummaryKey.ending_today(install, chat, days, today)
        for install in installs
        for chat in (None, -2)
        for days in (7, 30)
    ]
    with app.db():
        alone = {key: (await read_snapshots([key]))[key] for key in keys}  # closed days rolled up
        with counting_queries() as statements:
            together = await read_snapshots(keys)
    assert together == alone
    # One group of statements for each chat filter and days, whatever the number of installs: the
    # open days' seven, and the closed days' two (their rows, and the versions they must have).
    assert sum(1 for s in statements if "SELECT" in s.upper() and "analytics_" in s) == 4 * 9
    assert [together[SummaryKey.ending_today(i, None, 7, today)].lifetime.messages for i in installs] == [5, 10, 15]


async def test_a_snapshot_holds_what_the_reads_one_at_a_time_give(app: LiveApp, telegram):
    [install_id] = await owners_with_figures(app, telegram, 1)
    today = NOW.date()
    for chat in (None, -1):
        key = SummaryKey.ending_today(install_id, chat, 7, today)
        reader = AnalyticsReader(install_id, chat)
        window = key.window
        with app.db():
            snapshot = (await read_snapshots([key]))[key]
            assert snapshot.lifetime == await reader.lifetime()
            assert snapshot.days == await reader.days_with_data(key.span)
            assert list(snapshot.hourly) == await reader.hourly(window)
            assert snapshot.active[None] == await reader.active_since()
            for day in key.active_since:
                assert snapshot.active[day] == await reader.active_since(day)
            assert snapshot.previous_users == await reader.distinct_users(window.before())
            assert list(snapshot.chats) == await reader.chats(window, 100)


async def test_an_install_without_figures_reads_zeros(app: LiveApp, telegram):
    app.platform.clock = lambda: NOW
    owner = await app.create_user("empty@example.com", "pro")
    await install(app, owner, "analytics")
    with app.db():
        service = await app.platform.tokens.authenticate(owner.token)
        assert service is not None
        reader = await app.platform.analytics.reader_for(service)
        assert reader is not None
        key = SummaryKey.ending_today(reader.install_id, None, 7, NOW.date())
        snapshot = (await read_snapshots([key]))[key]
    assert snapshot.lifetime.messages == 0
    assert snapshot.days == {}
    assert list(snapshot.hourly) == [0] * 24
    assert set(snapshot.active.values()) == {0}
    assert snapshot.chats == ()
    assert Window.ending(NOW.date(), 7) == key.window
