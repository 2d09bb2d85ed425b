"""Channel Analytics in a time zone: the figures the store's rows give, read in any zone, equal
those an independent model computes from the same events with zoneinfo alone (each event's own
local date and hour), at random instants around clock changes and in :30 and :45 zones. The same
rows read in another zone give that zone's figures: a zone change re-reads history exactly."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics import store
from app.analytics.buckets import zone_named
from app.analytics.counting import Tally
from app.analytics.models import AnalyticsBucket, AnalyticsChat, AnalyticsClosedDay, AnalyticsSeen, AnalyticsUserDay
from app.analytics.reader import AnalyticsReader, Window
from app.analytics.snapshots import SummaryKey, read_snapshots
from tests.support.hostile import generated_settings
from tests.support.live import LiveApp
from tests.support.runtime import install

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "America/New_York"]
# Clock changes of 2026 (UTC instants), and an ordinary moment.
AROUND = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Europe/London springs forward
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # and falls back
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # America/New_York springs forward
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # and falls back
    datetime(2026, 6, 15, 18, 20, tzinfo=UTC),  # Asia/Kolkata's midnight is 18:30 UTC
]
CHATS = (-1, -2)


@dataclass(frozen=True)
class Event:
    moment: datetime
    chat_id: int
    kind: str  # received, sent, join, leave
    user_id: int | None

    def tally(self) -> Tally:
        return Tally(
            chat_id=self.chat_id,
            chat_title=f"Chat {self.chat_id}",
            chat_type="supergroup",
            moment=self.moment,
            received=int(self.kind == "received"),
            sent=int(self.kind == "sent"),
            joins=int(self.kind == "join"),
            leaves=int(self.kind == "leave"),
            user_id=self.user_id if self.kind == "received" else None,
        )


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    around = draw(st.sampled_from(AROUND))
    found = []
    for _ in range(draw(st.integers(1, 40))):
        seconds = draw(st.integers(-3 * 86_400, 3 * 86_400))
        kind = draw(st.sampled_from(["received", "received", "received", "sent", "join", "leave"]))
        user = draw(st.one_of(st.none(), st.integers(1, 6)))
        found.append(Event(around + timedelta(seconds=seconds), draw(st.sampled_from(CHATS)), kind, user))
    return found


class Model:
    """The figures, from the events alone: each event's local date and hour by zoneinfo."""

    def __init__(self, events: list[Event], zone: ZoneInfo, chat_id: int | None) -> None:
        self.events = [e for e in events if chat_id is None or e.chat_id == chat_id]
        self.zone = zone

    def local(self, event: Event) -> datetime:
        return event.moment.astimezone(self.zone)

    def within(self, window: Window) -> list[Event]:
        return [e for e in self.events if window.start <= self.local(e).date() <= window.end]

    def daily(self, window: Window) -> list[tuple[date, int, int, int, int]]:
        rows = []
        for day in window.days():
            those = self.within(Window(day, day))
            kinds = Counter(e.kind for e in those)
            users = {e.user_id for e in those if e.kind == "received" and e.user_id is not None}
            rows.append((day, kinds["received"] + kinds["sent"], len(users), kinds["join"], kinds["leave"]))
        return rows

    def hourly(self, window: Window) -> list[int]:
        profile = [0] * 24
        for e in self.within(window):
            if e.kind in ("received", "sent"):
                profile[self.local(e).hour] += 1
        return profile

    def users(self, events: list[Event]) -> set[int]:
        return {e.user_id for e in events if e.kind == "received" and e.user_id is not None}

    def active_since(self, start: date) -> int:
        return len(self.users([e for e in self.events if self.local(e).date() >= start]))

    def chats(self, window: Window) -> dict[int, tuple[int, int]]:
        by_chat: dict[int, list[Event]] = defaultdict(list)
        for e in self.within(window):
            by_chat[e.chat_id].append(e)
        figures = {
            chat: (sum(e.kind in ("received", "sent") for e in those), len(self.users(those)))
            for chat, those in by_chat.items()
        }
        return {chat: counted for chat, counted in figures.items() if counted != (0, 0)}


async def rewrite(install_id: str, found: list[Event]) -> None:
    """The install's rows, as the plugin writes them for `found` (in a few batches, as runs do)."""
    for model in (AnalyticsBucket, AnalyticsUserDay, AnalyticsSeen, AnalyticsChat, AnalyticsClosedDay):
        await model.filter(install_id=install_id).delete()
    for start in range(0, len(found), 7):
        await store.record_many([(install_id, e.tally()) for e in found[start : start + 7]])


async def check(install_id: str, found: list[Event], zone_name: str, chat_id: int | None, start: date, days: int):
    zone = zone_named(zone_name)
    model = Model(found, zone, chat_id)
    reader = AnalyticsReader(install_id, chat_id, zone=zone)
    window = Window(start, start + timedelta(days=days - 1))
    daily = [(d.day, d.counts.messages, d.users, d.counts.joins, d.counts.leaves) for d in await reader.daily(window)]
    assert daily == model.daily(window), (zone_name, chat_id)
    assert await reader.hourly(window) == model.hourly(window)
    assert (await reader.counts(window)).messages == sum(row[1] for row in model.daily(window))
    assert await reader.distinct_users(window) == len(model.users(model.within(window)))
    assert await reader.active_since(window.start) == model.active_since(window.start)
    chats = {c.chat_id: (c.counts.messages, c.users) for c in await reader.chats(window, 10, ends_today=False)}
    assert {k: v for k, v in chats.items() if v != (0, 0)} == model.chats(window)
    # A snapshot of the same summary holds the same figures.
    key = SummaryKey(install_id, chat_id, window.start, window.end, window.end + timedelta(days=3), zone_name)
    snapshot = (await read_snapshots([key]))[key]
    assert list(snapshot.hourly) == model.hourly(window)
    held = [(d.day, d.counts.messages, d.users, d.counts.joins, d.counts.leaves) for d in snapshot.days.values()]
    assert [row for row in held if window.start <= row[0] <= window.end] == [
        row for row in model.daily(window) if row[1:] != (0, 0, 0, 0)
    ]
    assert snapshot.previous_users == len(model.users(model.within(window.before())))
    in_snapshot = {c.chat_id: (c.counts.messages, c.users) for c in snapshot.chats}
    assert {chat: counted for chat, counted in in_snapshot.items() if counted != (0, 0)} == model.chats(window)


async def an_install(app: LiveApp) -> str:
    owner = await app.create_user("zones@example.com", "pro")
    return (await install(app, owner, "analytics")).id


@pytest.fixture
async def install_id(app: LiveApp) -> str:
    """One install for every example of a test, its rows written anew by each."""
    return await an_install(app)


@generated_settings(examples=40)
@given(
    found=events(),
    zone_name=st.sampled_from(ZONES),
    chat_id=st.sampled_from([None, *CHATS]),
    offset=st.integers(-4, 2),
    days=st.integers(1, 6),
)
async def test_the_store_gives_the_models_figures_in_any_zone(app, install_id, found, zone_name, chat_id, offset, days):
    around = min(e.moment for e in found)
    start = around.astimezone(zone_named(zone_name)).date() + timedelta(days=offset)
    with app.db():
        await rewrite(install_id, found)
        await check(install_id, found, zone_name, chat_id, start, days)


async def test_a_zone_change_re_reads_the_same_rows_exactly(app):
    """Messages just before and after Kolkata's and Kathmandu's midnight, written once, read in
    every zone: each gives its own days, with nothing recounted."""
    found = [
        Event(datetime(2026, 6, 15, 18, 14, tzinfo=UTC), -1, "received", 1),  # 23:44 in Kolkata, 23:59 in Kathmandu
        Event(datetime(2026, 6, 15, 18, 16, tzinfo=UTC), -1, "received", 1),  # 23:46 in Kolkata, 00:01 in Kathmandu
        Event(datetime(2026, 6, 15, 18, 31, tzinfo=UTC), -1, "received", 2),  # 00:01 in Kolkata
        Event(datetime(2026, 6, 15, 23, 59, tzinfo=UTC), -2, "received", 3),
        Event(datetime(2026, 6, 16, 0, 0, tzinfo=UTC), -2, "received", 3),
    ]
    install_id = await an_install(app)
    with app.db():
        await rewrite(install_id, found)
        for zone_name in ZONES:
            for chat_id in (None, -1, -2):
                await check(install_id, found, zone_name, chat_id, date(2026, 6, 14), 4)
        kolkata = AnalyticsReader(install_id, zone=zone_named("Asia/Kolkata"))
        kathmandu = AnalyticsReader(install_id, zone=zone_named("Asia/Kathmandu"))
        utc = AnalyticsReader(install_id)
        window = Window(date(2026, 6, 15), date(2026, 6, 16))
        assert [(d.counts.messages, d.users) for d in await utc.daily(window)] == [(4, 3), (1, 1)]
        assert [(d.counts.messages, d.users) for d in await kolkata.daily(window)] == [(2, 1), (3, 2)]
        assert [(d.counts.messages, d.users) for d in await kathmandu.daily(window)] == [(1, 1), (4, 3)]


async def test_a_dst_day_has_23_or_25_hours_of_exact_counts(app):
    """One message in each UTC quarter hour of London's short and long days and the days around
    them: each local day counts its own 92, 96 or 100, and every local hour its 4 (8 for the
    repeated hour, none for the skipped one)."""
    install_id = await an_install(app)
    london = zone_named("Europe/London")
    for first, hours in ((date(2026, 3, 28), (96, 92, 96)), (date(2026, 10, 24), (96, 100, 96))):
        start = datetime.combine(first, datetime.min.time(), london).astimezone(UTC)
        found = [Event(start + timedelta(minutes=15 * n), -1, "received", n % 5) for n in range(sum(hours))]
        with app.db():
            await rewrite(install_id, found)
            reader = AnalyticsReader(install_id, zone=london)
            daily = await reader.daily(Window(first, first + timedelta(days=2)))
            assert [d.counts.messages for d in daily] == list(hours)
            assert [d.users for d in daily] == [5, 5, 5]
            profile = await reader.hourly(Window(first + timedelta(days=1), first + timedelta(days=1)))
            expected = [4] * 24
            expected[1] = 0 if hours[1] == 92 else 8
            assert profile == expected
            await check(install_id, found, "Europe/London", None, first, 3)
