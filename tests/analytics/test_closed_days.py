"""Closed days: once a local day is closed, a summary reads its roll-up, and whatever still changes a
closed day (an event counted late, a person forgotten, a zone change) is in the next summary,
exactly as the buckets say; pruning forgets roll-ups with the days and the zones they were for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.analytics import closed_days
from app.analytics.buckets import zone_named
from app.analytics.closed_days import is_late, last_closed
from app.analytics.models import AnalyticsClosedDay, AnalyticsVersion
from app.analytics.personal import forget_user
from app.analytics.reader import AnalyticsReader, Window
from app.plugins.models import UserPlugin
from tests.support.installs_api import update_config
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)
KOLKATA = zone_named("Asia/Kolkata")

SUMMARY = """query($days: Int) { analytics(days: $days) {
  timezone daily(days: 7) { date messages users } hourly chats { chatId messages users } } }"""


class Owner:
    def __init__(self, app, user, bot, install_id: str) -> None:
        self.app, self.user, self.bot, self.install_id = app, user, bot, install_id

    async def post(self, update_id: int, moment: datetime, chat_id: int = -1001, sender_id: int = 10) -> None:
        update = message_update(update_id, chat_id=chat_id, sender_id=sender_id)
        update["message"]["date"] = int(moment.timestamp())
        assert (await deliver(self.app, self.bot, update)).status_code == 200
        await wait_until_processed(self.app)

    async def summary(self) -> dict:
        return (await self.app.graphql(SUMMARY, {"days": 7}, user=self.user))["analytics"]

    async def from_buckets(self, zone_name: str = "UTC") -> list[tuple[str, int, int]]:
        """The week's days as the buckets give them (AnalyticsReader reads no roll-up)."""
        zone = zone_named(zone_name)
        reader = AnalyticsReader(self.install_id, zone=zone)
        today = NOW.astimezone(zone).date()
        with self.app.db():
            days = await reader.daily(Window.ending(today, 7))
        return [(d.day.isoformat(), d.counts.messages, d.users) for d in days]

    async def closed_rows(self) -> list[tuple[str, int, int]]:  # (zone, day, version) of the all-chats rows
        with self.app.db():
            rows = AnalyticsClosedDay.filter(install_id=self.install_id, chat_id=0).order_by("zone", "day")
            return [(zone, day, version) for zone, day, version in await rows.values_list("zone", "day", "version")]


async def an_owner(app, telegram) -> Owner:
    app.platform.clock = lambda: NOW
    user = await app.create_user("closed@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    analytics = await install(app, user, "analytics")
    return Owner(app, user, bot, analytics.id)


def daily(summary: dict) -> list[tuple[str, int, int]]:
    return [(d["date"], d["messages"], d["users"]) for d in summary["daily"]]


async def test_a_summary_rolls_up_closed_days_once_and_reads_them_after(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY)
    await owner.post(2, NOW - 3 * DAY, sender_id=11)
    await owner.post(3, NOW)

    first = await owner.summary()
    assert daily(first) == await owner.from_buckets()
    assert daily(first)[3] == ("2026-06-12", 2, 2)
    rolled = await owner.closed_rows()
    # The week before today's (and the two weeks a summary reads), up to yesterday: at 12:30 UTC,
    # yesterday is closed. Today is read from its buckets.
    assert [day for _, day, _ in rolled][-1] == (NOW.date() - DAY - date(1970, 1, 1)).days
    assert await owner.summary() == first
    assert await owner.closed_rows() == rolled  # read, not rolled up again


async def test_an_event_counted_late_is_in_the_closed_day_it_belongs_to(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY)
    before = await owner.summary()
    assert daily(before)[3] == ("2026-06-12", 1, 1)

    await owner.post(2, NOW - 3 * DAY + timedelta(hours=5), chat_id=-1002, sender_id=11)  # three days late

    after = await owner.summary()
    assert daily(after)[3] == ("2026-06-12", 2, 2)
    assert daily(after) == await owner.from_buckets()
    assert after["hourly"][12] == 1 and after["hourly"][17] == 1
    assert sorted((c["chatId"], c["messages"], c["users"]) for c in after["chats"]) == [
        ("-1001", 1, 1),
        ("-1002", 1, 1),
    ]
    # Each late event moved its UTC day's version on: that day was rolled up again, no other.
    versions = {day: version for _, day, version in await owner.closed_rows()}
    assert versions.pop((date(2026, 6, 12) - date(1970, 1, 1)).days) == 2
    assert set(versions.values()) == {0}


async def test_a_late_event_retires_a_local_day_that_spans_two_utc_days(app, telegram):
    owner = await an_owner(app, telegram)
    assert (await update_config(app, owner.user, "analytics", {"timezone": "Asia/Kolkata"}))["status"] == "ACTIVE"
    await owner.post(1, datetime(2026, 6, 12, 20, 0, tzinfo=UTC))  # 01:30 on 13 June in Kolkata, UTC's 12th
    assert daily(await owner.summary())[4] == ("2026-06-13", 1, 1)

    await owner.post(2, datetime(2026, 6, 13, 10, 0, tzinfo=UTC), sender_id=11)  # 15:30 there, UTC's 13th

    after = await owner.summary()
    assert daily(after)[4] == ("2026-06-13", 2, 2)
    assert daily(after) == await owner.from_buckets("Asia/Kolkata")


def test_an_event_is_late_an_hour_after_its_date_and_a_day_closes_two_hours_after_its_end():
    assert not is_late(NOW - timedelta(minutes=59), NOW)
    assert is_late(NOW - timedelta(minutes=61), NOW)
    today = date(2026, 6, 15)
    assert last_closed(today, zone_named("UTC"), datetime(2026, 6, 15, 1, 59, tzinfo=UTC)) == date(2026, 6, 13)
    assert last_closed(today, zone_named("UTC"), datetime(2026, 6, 15, 2, 0, tzinfo=UTC)) == date(2026, 6, 14)
    assert last_closed(today, zone_named("UTC")) == date(2026, 6, 13)  # without the reader's clock
    # Kolkata's 15 June begins at 18:30 UTC on the 14th: two hours later, the 14th is closed there.
    assert last_closed(today, KOLKATA, datetime(2026, 6, 14, 20, 29, tzinfo=UTC)) == date(2026, 6, 13)
    assert last_closed(today, KOLKATA, datetime(2026, 6, 14, 20, 30, tzinfo=UTC)) == date(2026, 6, 14)


async def test_a_person_forgotten_leaves_closed_days_without_them(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY, sender_id=10)
    await owner.post(2, NOW - 3 * DAY, sender_id=11)
    assert daily(await owner.summary())[3] == ("2026-06-12", 2, 2)

    with app.db():
        await forget_user(11)

    after = await owner.summary()
    assert daily(after)[3] == ("2026-06-12", 2, 1)  # their messages stay counted, not them
    assert daily(after) == await owner.from_buckets()


async def test_a_zone_change_rolls_up_in_the_new_zone_and_pruning_forgets_the_old(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, datetime(2026, 6, 12, 18, 10, tzinfo=UTC))  # 23:40 in Kolkata
    await owner.post(2, datetime(2026, 6, 12, 18, 40, tzinfo=UTC), sender_id=11)  # 00:10 on the 13th there
    assert daily(await owner.summary())[3] == ("2026-06-12", 2, 2)

    assert (await update_config(app, owner.user, "analytics", {"timezone": "Asia/Kolkata"}))["status"] == "ACTIVE"
    kolkata = await owner.summary()
    assert kolkata["timezone"] == "Asia/Kolkata"
    assert daily(kolkata) == await owner.from_buckets("Asia/Kolkata")
    assert [(d, m) for d, m, _ in daily(kolkata)[3:5]] == [("2026-06-12", 1), ("2026-06-13", 1)]
    assert {zone for zone, _, _ in await owner.closed_rows()} == {"UTC", "Asia/Kolkata"}

    with app.db():
        await app.platform.scheduler.fire_due(NOW.timestamp())  # the hourly prune
    assert {zone for zone, _, _ in await owner.closed_rows()} == {"Asia/Kolkata"}
    assert await owner.summary() == kolkata


async def test_an_older_roll_up_never_replaces_a_newer_one(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY)
    window = Window(date(2026, 6, 10), date(2026, 6, 13))
    twelfth = (date(2026, 6, 12) - date(1970, 1, 1)).days
    with app.db():
        stale = await closed_days.roll_up(owner.install_id, "UTC", window, None)  # the 12th at 1 (the late post)
        await closed_days.bump(AnalyticsVersion._meta.db, [(owner.install_id, closed_days.WHOLE_INSTALL)])
        await closed_days.roll_up(owner.install_id, "UTC", window, None)  # the 12th at 2, the others at 1
        await closed_days.store_rows(owner.install_id, "UTC", stale)  # a slower reader's
        stored = await AnalyticsClosedDay.filter(install_id=owner.install_id).values_list("day", "version")
    assert dict(stored) == {twelfth - 2: 1, twelfth - 1: 1, twelfth: 2, twelfth + 1: 1}


async def test_an_uninstall_takes_the_roll_ups_with_it(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY)
    await owner.summary()
    with app.db():
        await UserPlugin.filter(id=owner.install_id).delete()
        assert await AnalyticsClosedDay.filter(install_id=owner.install_id).count() == 0
        assert await AnalyticsVersion.filter(install_id=owner.install_id).count() == 0


async def test_a_chat_with_id_0_which_telegram_never_sends_is_not_counted(app, telegram):
    """0 stands for all chats in the tables: a chat of that id would be counted twice in them."""
    owner = await an_owner(app, telegram)
    await owner.post(1, NOW - 3 * DAY, chat_id=0)
    await owner.post(2, NOW - 3 * DAY, chat_id=-1001)
    summary = await owner.summary()
    assert daily(summary)[3] == ("2026-06-12", 1, 1)
    assert [c["chatId"] for c in summary["chats"]] == ["-1001"]
