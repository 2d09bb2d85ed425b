"""Member counts end to end: Telegram's getChatMemberCount (the fake Bot API, over real HTTP) read
within a minute of a chat's first message or the bot being added or promoted (by the `member-reads`
schedule, never in the event's own run), and daily; a chat the bot was removed from shown and no
longer read; `analytics { members }` over a window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.analytics.member_reader import member_figures, member_figures_of
from app.analytics.member_store import KnownChats
from app.analytics.models import AnalyticsMemberChat, AnalyticsMemberCount
from app.plugins.models import RunRecord
from tests.support.queries import counting_queries
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import (
    chat_member,
    chat_member_update,
    message,
    message_update,
    my_chat_member_update,
    user,
)

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
KICKED = "Forbidden: bot was kicked from the supergroup chat"

MEMBERS = """query($chatId: ID, $days: Int) { analytics(chatId: $chatId, days: $days) {
  members { current change daily { date count } unavailable { chatId title reason since } } } }"""


def dated(moment: datetime, update: dict) -> dict:
    for key in ("message", "chat_member", "my_chat_member"):
        if key in update:
            update[key]["date"] = int(moment.timestamp())
    return update


class Owner:
    """A pro user with a bot and Channel Analytics, and the app's clock, which the test moves."""

    def __init__(self, app, telegram, user, bot, install_id: str) -> None:
        self.app, self.telegram, self.user, self.bot, self.install_id = app, telegram, user, bot, install_id
        self.now = NOW
        self.ticked = NOW.timestamp()  # the scheduler's clock: the last instant it fired at
        app.platform.clock = lambda: self.now

    async def members(self, **variables) -> dict:
        return (await self.app.graphql(MEMBERS, variables, user=self.user))["analytics"]["members"]

    async def deliver(self, update: dict) -> None:
        assert (await deliver(self.app, self.bot, dated(self.now, update))).status_code == 200
        await wait_until_processed(self.app)

    async def fire(self, at: datetime) -> None:
        """The schedules due at `at`, with the clock there (as the scheduler fires them)."""
        self.now = at
        self.ticked = at.timestamp()
        with self.app.db():
            await self.app.platform.scheduler.fire_due(self.ticked)

    async def read_soon(self) -> None:
        """The scheduler's next minute, where `member-reads` is due (the hour's schedules have
        already fired in that hour); the app's clock stays."""
        self.ticked += 60
        with self.app.db():
            await self.app.platform.scheduler.fire_due(self.ticked)

    def reads(self, chat_id: int | None = None) -> list:
        """The getChatMemberCount requests Telegram received (to `chat_id` only, when given)."""
        return [
            a
            for a in self.telegram.arrivals
            if a.method == "getChatMemberCount" and (chat_id is None or str(a.chat_id) == str(chat_id))
        ]


async def an_owner(app, telegram, email: str = "members@example.com") -> Owner:
    app.platform.clock = lambda: NOW
    owner = await app.create_user(email, "pro")
    bot = await connect_bot(app, owner, telegram)
    analytics = await install(app, owner, "analytics")
    owner_ = Owner(app, telegram, owner, bot, analytics.id)
    await owner_.fire(NOW)  # the platform is up: this hour's schedules have fired
    return owner_


async def test_a_chats_first_message_reads_its_count_once(app, telegram):
    owner = await an_owner(app, telegram)
    assert (await owner.members()) == {"current": None, "change": None, "daily": [], "unavailable": []}
    telegram.set_members(owner.bot.token, -1001, 120)

    await owner.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await owner.deliver(message_update(2, chat_id=-1001, sender_id=11))
    assert owner.reads() == []  # the messages' runs never wait for Telegram

    await owner.read_soon()
    await owner.read_soon()
    assert len(owner.reads(-1001)) == 1
    assert owner.reads(-1001)[0].status == 200
    figures = await owner.members()
    assert figures == {
        "current": 120,
        "change": 0,
        "daily": [{"date": NOW.date().isoformat(), "count": 120}],
        "unavailable": [],
    }


async def test_each_chat_shows_its_last_count(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 120)
    telegram.set_members(owner.bot.token, -1002, 9)
    for n, chat_id in enumerate((-1001, -1001, -1002, -1003)):  # -1003: the bot is in no such chat
        await owner.deliver(message_update(n + 1, chat_id=chat_id, sender_id=10))
    await owner.read_soon()
    telegram.kick_bot(owner.bot.token, -1002)
    await owner.fire(NOW + DAY)

    query = "{ analytics { chats { chatId memberCount } } }"
    chats = (await app.graphql(query, user=owner.user))["analytics"]["chats"]
    assert {chat["chatId"]: chat["memberCount"] for chat in chats} == {
        "-1001": 120,
        "-1002": None,  # removed since: its count is no longer known
        "-1003": None,
    }


async def test_a_private_chat_has_no_member_count(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.deliver({"update_id": 1, "message": message(501, "private", **{"from": user(501), "text": "hi"})})
    await owner.read_soon()
    await owner.fire(NOW + DAY)
    assert owner.reads() == []


async def test_the_daily_schedule_reads_each_chat_at_most_once_a_utc_day(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 120)
    telegram.set_members(owner.bot.token, -1002, 30)
    await owner.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await owner.deliver(message_update(2, chat_id=-1002, sender_id=10))
    await owner.read_soon()
    assert len(owner.reads()) == 2

    await owner.fire(NOW + HOUR)  # the same UTC day: both were read today
    assert len(owner.reads()) == 2

    telegram.set_members(owner.bot.token, -1001, 125)
    telegram.set_members(owner.bot.token, -1002, 28)
    await owner.fire(NOW + DAY - 12 * HOUR)  # 00:30 the next day
    assert len(owner.reads(-1001)) == len(owner.reads(-1002)) == 2
    for hour in range(1, 24):  # every other hourly run of that day
        await owner.fire(NOW + DAY - 12 * HOUR + hour * HOUR)
    assert len(owner.reads()) == 4

    figures = await owner.members()
    tomorrow = (NOW + DAY).date()
    assert figures["daily"][-2:] == [
        {"date": NOW.date().isoformat(), "count": 150},
        {"date": tomorrow.isoformat(), "count": 153},
    ]
    assert (figures["current"], figures["change"]) == (153, 3)  # +5 and -2
    with app.db():
        runs = await RunRecord.filter(schedule="members", success=False).count()
    assert runs == 0


async def test_the_bot_added_or_promoted_reads_the_count(app, telegram):
    owner = await an_owner(app, telegram)
    bot_id = telegram.bot(owner.bot.token).bot_id
    me = user(bot_id, "test_bot", is_bot=True) | {"username": "test_bot"}
    telegram.set_members(owner.bot.token, -1001, 40)

    await owner.deliver(my_chat_member_update(1, chat_member("left", user=me), chat_member("member", user=me), -1001))
    await owner.read_soon()
    assert len(owner.reads(-1001)) == 1

    telegram.set_members(owner.bot.token, -1001, 41)
    owner.now += HOUR
    promoted = my_chat_member_update(2, chat_member("member", user=me), chat_member("administrator", user=me), -1001)
    await owner.deliver(promoted)
    await owner.read_soon()
    assert len(owner.reads(-1001)) == 2

    telegram.set_members(owner.bot.token, -1001, 42)
    owner.now += HOUR
    again = chat_member_update(3, chat_member("member", user=me), chat_member("administrator", user=me), -1001)
    await owner.deliver(again)  # a chat_member update about the bot itself
    await owner.read_soon()
    assert len(owner.reads(-1001)) == 3

    someone = user(bot_id + 1, "other_bot", is_bot=True) | {"username": "other_bot"}
    other = chat_member_update(
        4, chat_member("member", user=someone), chat_member("administrator", user=someone), -1001
    )
    await owner.deliver(other)  # another bot promoted: not ours
    await owner.read_soon()
    assert len(owner.reads(-1001)) == 3
    assert (await owner.members())["current"] == 42


async def test_a_kicked_bot_makes_the_chat_unavailable_until_it_is_added_back(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 50)
    telegram.set_members(owner.bot.token, -1002, 7)
    await owner.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await owner.deliver(message_update(2, chat_id=-1002, sender_id=10))
    await owner.read_soon()

    telegram.kick_bot(owner.bot.token, -1001)
    kicked_at = NOW + DAY - 12 * HOUR
    await owner.fire(kicked_at)
    assert [a.status for a in owner.reads(-1001)] == [200, 403]

    figures = await owner.members()
    assert figures["unavailable"] == [
        {"chatId": "-1001", "title": "Test chat", "reason": KICKED, "since": kicked_at.isoformat()}
    ]
    assert figures["current"] == 7  # the chat the bot is still in
    assert figures["daily"][-2:] == [
        {"date": NOW.date().isoformat(), "count": 57},
        {"date": kicked_at.date().isoformat(), "count": 7},
    ]

    for day in range(1, 4):  # not read again, day after day
        await owner.fire(kicked_at + day * DAY)
    assert len(owner.reads(-1001)) == 2
    assert len(owner.reads(-1002)) == 5

    telegram.set_members(owner.bot.token, -1001, 44)
    me = user(telegram.bot(owner.bot.token).bot_id, "test_bot", is_bot=True)
    await owner.deliver(my_chat_member_update(3, chat_member("left", user=me), chat_member("member", user=me), -1001))
    await owner.read_soon()
    assert [a.status for a in owner.reads(-1001)] == [200, 403, 200]
    figures = await owner.members()
    assert figures["unavailable"] == [] and figures["current"] == 51
    # the days the bot was out carry no count of the chat over: they hold the other chat's only
    assert [d["count"] for d in figures["daily"][-5:]] == [57, 7, 7, 7, 51]

    await owner.fire(owner.now + DAY)  # and read daily again
    assert len(owner.reads(-1001)) == 4


async def test_the_bot_removed_is_shown_at_once_without_asking_telegram(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 50)
    await owner.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await owner.read_soon()
    me = user(telegram.bot(owner.bot.token).bot_id, "test_bot", is_bot=True)

    owner.now += HOUR
    await owner.deliver(my_chat_member_update(2, chat_member("member", user=me), chat_member("kicked", user=me), -1001))
    await owner.read_soon()

    assert len(owner.reads(-1001)) == 1
    figures = await owner.members()
    assert [(c["reason"], c["since"]) for c in figures["unavailable"]] == [
        ("The bot was removed from the chat", (NOW + HOUR).isoformat())
    ]
    assert figures["current"] is None and figures["change"] is None


async def test_a_chat_telegram_does_not_find_is_unavailable(app, telegram):
    owner = await an_owner(app, telegram)
    await owner.deliver(message_update(1, chat_id=-1003, sender_id=10))  # never put in it: 400
    await owner.read_soon()
    figures = await owner.members()
    assert [(c["chatId"], c["reason"]) for c in figures["unavailable"]] == [("-1003", "Bad Request: chat not found")]
    await owner.fire(NOW + DAY)
    assert len(owner.reads(-1003)) == 1


async def test_reads_wait_their_turn_in_the_send_queue(make_app, telegram):
    app = await make_app(send_group_per_minute=1)  # one call a minute to a group: a second read cannot wait so long
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 50)
    me = user(telegram.bot(owner.bot.token).bot_id, "test_bot", is_bot=True)
    await owner.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await owner.read_soon()
    promoted = my_chat_member_update(2, chat_member("member", user=me), chat_member("administrator", user=me), -1001)

    await owner.deliver(promoted)
    await owner.read_soon()

    assert len(owner.reads(-1001)) == 1  # the queue refused the second call: it never reached Telegram
    with app.db():
        runs = await RunRecord.filter(install_id=owner.install_id, schedule="member-reads")
        chat = await AnalyticsMemberChat.get(install_id=owner.install_id, chat_id=-1001)
    outputs = sorted((run.output["read"], run.success, run.output["due"]) for run in runs)
    assert outputs == [(0, True, 1), (1, True, 1)]
    due = chat.due_at
    assert due is not None  # still wanted: read once the queue lets it
    assert (await owner.members())["current"] == 50


async def test_a_slow_bot_api_never_holds_up_a_chats_messages(make_app, telegram):
    app = await make_app(plugin_timeout_seconds=6)
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 50)
    telegram.delay("getChatMemberCount", 8)  # beyond the run's timeout: the read gives up first
    for n in range(3):
        await owner.deliver(message_update(n + 1, chat_id=-1001, sender_id=10))
    with app.db():
        runs = await RunRecord.filter(install_id=owner.install_id, event_type="telegram.message").count()
    assert runs == 3 and owner.reads() == []  # counted, and nothing asked of Telegram in their runs
    figures = (await app.graphql("{ analytics { totalMessages } }", user=owner.user))["analytics"]
    assert figures["totalMessages"] == 3

    await owner.read_soon()  # gives up within the run's time, and leaves the chat to the daily read
    with app.db():
        run = await RunRecord.get(install_id=owner.install_id, schedule="member-reads")
    assert run.success and run.output == {"due": 1, "read": 0, "unavailable": 0}
    assert (await owner.members())["current"] is None
    await owner.read_soon()
    with app.db():  # not asked again every minute
        assert await RunRecord.filter(install_id=owner.install_id, schedule="member-reads").count() == 1
    telegram.delays.clear()
    await owner.fire(NOW + HOUR)
    assert (await owner.members())["current"] == 50


async def test_member_reads_run_only_for_installs_with_a_chat_due(app, telegram):
    first = await an_owner(app, telegram)
    second = await an_owner(app, telegram, "second@example.com")
    telegram.set_members(first.bot.token, -1001, 50)
    await first.deliver(message_update(1, chat_id=-1001, sender_id=10))
    await second.deliver(message_update(1, chat_id=-1001, sender_id=10))  # a chat of its own bot
    await second.read_soon()  # the one chat of each is read
    await first.read_soon()  # nothing is due any more: no run at all

    with app.db():
        runs = await RunRecord.filter(schedule="member-reads").values_list("install_id", flat=True)
    assert sorted(runs) == sorted([first.install_id, second.install_id])
    assert (await first.members())["current"] == 50


async def test_the_series_carries_counts_forward_and_ends_on_the_last_known_one(app, telegram):
    owner = await an_owner(app, telegram)
    readings = [
        (-1001, NOW - 10 * DAY, 100),  # before the window: carried into it
        (-1001, NOW - 5 * DAY, 110),
        (-1001, NOW - 5 * DAY + 2 * HOUR, 112),  # the day's last reading counts
        (-1001, NOW - DAY, 115),
        (-1002, NOW - 3 * DAY, 40),  # first read within the window
    ]
    with app.db():
        for chat_id, read_at, count in readings:
            await AnalyticsMemberCount.create(
                install_id=owner.install_id, chat_id=chat_id, read_at=read_at, count=count
            )
        for chat_id in (-1001, -1002):
            await AnalyticsMemberChat.create(install_id=owner.install_id, chat_id=chat_id, last_read_at=NOW - DAY)

    figures = await owner.members(days=7)
    expected = [100, 112, 112, 152, 152, 155, 155]
    assert figures["daily"] == [
        {"date": (NOW - (6 - n) * DAY).date().isoformat(), "count": count} for n, count in enumerate(expected)
    ]
    assert (figures["current"], figures["change"]) == (155, 15)  # -1001 grew 15; -1002 was first read at 40

    one = await owner.members(chatId="-1002", days=7)
    assert one["daily"] == [{"date": (NOW - n * DAY).date().isoformat(), "count": 40} for n in (3, 2, 1, 0)]
    assert (one["current"], one["change"]) == (40, 0)
    short = await owner.members(days=2)
    assert [d["count"] for d in short["daily"]] == [155, 155]
    assert short["change"] == 3  # from the count at the window's start (112), not at its first day's end


async def test_retention_keeps_the_last_reading_before_the_window(app, telegram):
    owner = await an_owner(app, telegram)
    with app.db():
        for days_ago, count in ((40, 90), (35, 95), (10, 100)):
            await AnalyticsMemberCount.create(
                install_id=owner.install_id, chat_id=-1001, read_at=NOW - days_ago * DAY, count=count
            )
        await AnalyticsMemberChat.create(install_id=owner.install_id, chat_id=-1001, last_read_at=NOW)

    await owner.fire(NOW + HOUR)  # retention 30 days: prune

    with app.db():
        kept = (
            await AnalyticsMemberCount.filter(install_id=owner.install_id)
            .order_by("read_at")
            .values_list("count", flat=True)
        )
    assert kept == [95, 100]
    figures = await owner.members(days=30)
    assert figures["daily"][0] == {"date": (NOW - 29 * DAY).date().isoformat(), "count": 95}
    assert (figures["current"], figures["change"]) == (100, 5)


async def test_one_owner_never_sees_anothers_member_counts(app, telegram):
    first = await an_owner(app, telegram)
    telegram.set_members(first.bot.token, -1001, 50)
    await first.deliver(message_update(1, chat_id=-1001, sender_id=10))
    second = await an_owner(app, telegram, "second@example.com")
    second_figures = await second.members()
    assert second_figures == {"current": None, "change": None, "daily": [], "unavailable": []}


async def test_a_subscription_shows_the_bot_added_and_removed(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 77)
    me = user(telegram.bot(owner.bot.token).bot_id, "test_bot", is_bot=True)
    live_members = "subscription { analyticsUpdated { members { current unavailable { chatId reason } } } }"
    async with subscribe(app.url, live_members, token=owner.user.token) as live:
        assert (await live.next())["analyticsUpdated"]["members"] == {"current": None, "unavailable": []}
        added = my_chat_member_update(1, chat_member("left", user=me), chat_member("member", user=me), -1001)
        assert (await deliver(app, owner.bot, dated(owner.now, added))).status_code == 200
        await wait_until_processed(app)
        await owner.read_soon()
        await live.until(lambda d: d["analyticsUpdated"]["members"]["current"] == 77)
        owner.now += HOUR
        removed = my_chat_member_update(2, chat_member("member", user=me), chat_member("kicked", user=me), -1001)
        assert (await deliver(app, owner.bot, dated(owner.now, removed))).status_code == 200
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["members"]["unavailable"] != [])
    assert data["analyticsUpdated"]["members"] == {
        "current": None,
        "unavailable": [{"chatId": "-1001", "reason": "The bot was removed from the chat"}],
    }


async def test_the_series_is_in_the_installs_time_zone(app, telegram):
    app.platform.clock = lambda: NOW  # 18:00 in Kolkata
    user_ = await app.create_user("delhi@example.com", "pro")
    bot = await connect_bot(app, user_, telegram)
    analytics = await install(app, user_, "analytics", {"timezone": "Asia/Kolkata"})
    owner = Owner(app, telegram, user_, bot, analytics.id)
    late = datetime(2026, 6, 13, 20, 30, tzinfo=UTC)  # 02:00 on 14 June in Kolkata
    with app.db():
        await AnalyticsMemberCount.create(install_id=analytics.id, chat_id=-1001, read_at=late, count=10)
        await AnalyticsMemberCount.create(install_id=analytics.id, chat_id=-1001, read_at=NOW, count=12)
        await AnalyticsMemberChat.create(install_id=analytics.id, chat_id=-1001, last_read_at=NOW)

    figures = await owner.members(days=3)
    assert figures["daily"] == [{"date": "2026-06-14", "count": 10}, {"date": "2026-06-15", "count": 12}]
    assert (figures["current"], figures["change"]) == (12, 2)


async def test_an_open_subscription_reads_member_counts_again_only_when_a_reading_is_written(app, telegram):
    owner = await an_owner(app, telegram)
    telegram.set_members(owner.bot.token, -1001, 77)
    await owner.deliver(message_update(1, chat_id=-1001))
    await owner.read_soon()
    live_members = "subscription { analyticsUpdated { messagesReceived members { current } } }"
    async with subscribe(app.url, live_members, token=owner.user.token) as live:
        assert (await live.next())["analyticsUpdated"] == {"messagesReceived": 1, "members": {"current": 77}}
        with app.db():  # a reading no notice tells of: a message's summary does not read it
            await AnalyticsMemberCount.create(install_id=owner.install_id, chat_id=-1001, read_at=owner.now, count=500)
        await owner.deliver(message_update(2, chat_id=-1001))
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["messagesReceived"] == 2)
        assert data["analyticsUpdated"]["members"] == {"current": 77}

        telegram.set_members(owner.bot.token, -1001, 90)
        me = user(telegram.bot(owner.bot.token).bot_id, "test_bot", is_bot=True)
        owner.now += HOUR
        promoted = my_chat_member_update(
            3, chat_member("member", user=me), chat_member("administrator", user=me), -1001
        )
        await owner.deliver(promoted)
        await owner.read_soon()  # a reading written by the plugin: the summaries read the counts again
        data, _ = await live.until(lambda d: d["analyticsUpdated"]["members"]["current"] == 90)
    assert data["analyticsUpdated"]["messagesReceived"] == 2


async def test_many_installs_figures_read_together_are_each_their_own(app, telegram):
    """What the streams one notice wakes read in one go (member_figures_of) is, install by install,
    what each would have read alone: its own readings, chats and counts before the window."""
    owners = [await an_owner(app, telegram, f"m{n}@example.com") for n in range(3)]
    installs = [owner.install_id for owner in owners]
    start, end, zone = (NOW - 6 * DAY).date(), NOW.date(), ZoneInfo("UTC")
    with app.db():
        for n, install_id in enumerate(installs[:2]):
            for chat_id, read_at, count in (
                (-1001, NOW - 10 * DAY, 100 + n),  # before the window
                (-1001, NOW - 2 * DAY, 110 + n),
                (-1002 - n, NOW - DAY, 40 + n),
            ):
                await AnalyticsMemberCount.create(install_id=install_id, chat_id=chat_id, read_at=read_at, count=count)
            await AnalyticsMemberChat.create(install_id=install_id, chat_id=-1001, last_read_at=NOW)
        await AnalyticsMemberChat.create(
            install_id=installs[1], chat_id=-1009, unavailable_reason=KICKED, unavailable_since=NOW - HOUR
        )
        together = {chat: await member_figures_of(installs, chat, start, end, zone) for chat in (None, -1001)}
        alone = {
            chat: {install: await member_figures(install, chat, start, end, zone) for install in installs}
            for chat in (None, -1001)
        }

    assert together == alone
    first, second, third = (together[None][install] for install in installs)
    assert first.series != second.series  # each its own counts
    assert [chat.chat_id for chat in second.unavailable] == [-1009]
    assert first.unavailable == [] and together[-1001][installs[1]].unavailable == []
    assert (third.series.current, third.series.change, third.series.daily, third.unavailable) == (None, None, [], [])


async def test_streams_asking_at_once_read_member_counts_in_one_batch(app, telegram):
    owners = [await an_owner(app, telegram, f"live{n}@example.com") for n in range(3)]
    with app.db():
        for n, owner in enumerate(owners):
            await AnalyticsMemberCount.create(install_id=owner.install_id, chat_id=-1001, read_at=NOW, count=10 + n)
            await AnalyticsMemberChat.create(install_id=owner.install_id, chat_id=-1001, last_read_at=NOW)
    members = app.platform.live_summaries.members
    keys = [(owner.install_id, None, "UTC", NOW.date() - 6 * DAY, NOW.date()) for owner in owners]
    batches = members.batches
    with app.db():
        figures = await asyncio.gather(*(members.load(key) for key in keys))
    assert members.batches == batches + 1
    assert [f.series.current for f in figures] == [10, 11, 12]

    live_members = "subscription { analyticsUpdated { members { current } } }"
    async with subscribe(app.url, live_members, token=owners[0].user.token) as live:
        assert (await live.next())["analyticsUpdated"]["members"] == {"current": 10}
    assert members.batches == batches + 2  # the stream read its own through the same loads


async def test_chats_first_seen_at_the_same_moment_are_looked_up_in_one_query(app, telegram):
    first = await an_owner(app, telegram, "k1@example.com")
    second = await an_owner(app, telegram, "k2@example.com")
    with app.db():
        await AnalyticsMemberChat.create(install_id=first.install_id, chat_id=-1001, last_read_at=NOW)
        await AnalyticsMemberChat.create(install_id=second.install_id, chat_id=-1002, last_read_at=NOW)
    known = KnownChats()
    asked = [
        (first.install_id, -1001),
        (first.install_id, -1002),  # another install's chat: not this one's
        (second.install_id, -1002),
        (second.install_id, -1003),
    ]
    with app.db(), counting_queries() as statements:
        found = await asyncio.gather(*(known.check(install_id, chat_id) for install_id, chat_id in asked))
    assert found == [True, False, True, False]
    assert len(member_chat_lookups(statements)) == 1
    with app.db(), counting_queries() as statements:
        assert await known.check(first.install_id, -1001) is True  # known: no query
        assert await known.check(first.install_id, -1002) is False  # not known yet: asked again
    assert len(member_chat_lookups(statements)) == 1


def member_chat_lookups(statements: list[str]) -> list[str]:
    """The statements on member chats (the app's background loops, a claim's poll, may query meanwhile)."""
    return [s for s in statements if "analytics_member_chats" in s]
