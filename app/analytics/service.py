"""Analytics for the signed-in user: their own analytics install's figures, never anyone else's."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.accounts.context import ServiceContext
from app.analytics.buckets import today_in, zone_named
from app.analytics.member_reader import MemberFigures
from app.analytics.ranges import MAX_DAYS, check_days, window_of
from app.analytics.reader import UTC_ZONE, AnalyticsReader, ChatStat, Counts, DayStat, Window
from app.analytics.snapshots import Snapshot, SnapshotReader, SummaryKey, read_snapshots
from app.errors import BadUserInput, FieldError
from app.inputs import INT64_MAX, INT64_MIN, is_ascii_digits
from app.plugins.models import UserPlugin

SLUG = "analytics"
MAX_CHATS = 100
DEFAULT_RETENTION = 30

__all__ = ["MAX_DAYS", "AnalyticsService", "InstallReader", "Summary", "check_days", "parse_chat_id"]


class InstallReader(AnalyticsReader):
    """The reader of one analytics install, with the settings its ranges are checked by."""

    def __init__(
        self,
        install_id: str,
        chat_id: int | None,
        gate: asyncio.Semaphore | None,
        zone_name: str,
        retention: int,
    ) -> None:
        super().__init__(install_id, chat_id, gate, zone_named(zone_name))
        self.zone_name = zone_name
        self.retention = retention


def install_settings(config: Any) -> tuple[str, int]:
    """The zone and retention an install's config names (a config written before either: UTC, 30)."""
    config = config if isinstance(config, dict) else {}
    name = config.get("timezone") or "UTC"
    try:
        zone_named(name)
    except ValueError:
        name = "UTC"
    retention = config.get("retention")
    return name, retention if isinstance(retention, int) and retention >= 1 else DEFAULT_RETENTION


@dataclass(frozen=True)
class Period:
    """Counters over one window; `messages_today` and `messages_this_week` are its last day and
    its last 7 days."""

    window: Window
    counts: Counts
    unique_users: int
    messages_today: int
    messages_this_week: int


@dataclass(frozen=True)
class CsvFile:
    filename: str
    body: str


@dataclass(frozen=True)
class ActiveUsers:
    day: int
    week: int
    month: int


@dataclass(frozen=True)
class Summary:
    """What a summary of `days` ending `today` shows, from one snapshot of its figures. `reader`
    answers the reads of other arguments (`daily(days)`, `chats(limit)`) from the snapshot too."""

    snapshot: Snapshot
    unique_users: int
    messages_today: int
    messages_this_week: int
    active_users: ActiveUsers
    period: Period
    previous_period: Period
    reader: SnapshotReader = field(compare=False, repr=False)
    # The window's member counts, read with the summary on the live path (so a change of them alone
    # is news to its subscribers); a query's summary reads them when asked (app/graphql/analytics.py).
    members: MemberFigures | None = None

    @property
    def lifetime(self) -> Counts:
        return self.snapshot.lifetime

    @property
    def today(self) -> date:
        return self.snapshot.key.today

    @property
    def window(self) -> Window:
        return self.snapshot.key.window

    @property
    def timezone(self) -> str:
        return self.snapshot.key.zone


def parse_chat_id(chat_id: str | None) -> int | None:
    if chat_id is None:
        return None
    text = str(chat_id).strip()
    if not (is_ascii_digits(text.removeprefix("-")) and len(text) <= 20) or not INT64_MIN <= int(text) <= INT64_MAX:
        raise BadUserInput(
            "chatId must be a Telegram chat id", [FieldError("/chatId", "a whole number, e.g. -1001234567890")]
        )
    return int(text)


def daily_csv(daily: list[DayStat]) -> str:
    return _csv(
        ["date", "messages", "received", "sent", "users", "joins", "leaves"],
        (
            [
                d.day.isoformat(),
                d.counts.messages,
                d.counts.received,
                d.counts.sent,
                d.users,
                d.counts.joins,
                d.counts.leaves,
            ]
            for d in daily
        ),
    )


def chats_csv(chats: list[ChatStat]) -> str:
    return _csv(
        ["chat_id", "title", "type", "messages", "users", "total_messages"],
        (
            [c.chat_id, _safe_cell(c.title or ""), c.type or "", c.counts.messages, c.users, c.total.messages]
            for c in chats
        ),
    )


def _csv(header: list[str], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _safe_cell(text: str) -> str:
    """A chat title is someone else's text: never let a spreadsheet run it as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AnalyticsService:
    """The reads behind `Query.analytics` and the CSV export (built by app/platform.py, reached as
    `platform.analytics`). `clock`: the platform's, whose date in an install's zone is its today."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def today(self, zone: ZoneInfo = UTC_ZONE) -> date:
        """Today in `zone`."""
        return today_in(zone, self.clock())

    async def reader_for(
        self, ctx: ServiceContext, chat_id: int | None = None, gate: asyncio.Semaphore | None = None
    ) -> InstallReader | None:
        """The reader of the caller's analytics install, in its zone, or None when it is not
        installed. `gate`: what its reads wait for (AnalyticsReader)."""
        rows = await UserPlugin.filter(user_id=ctx.user_id, plugin__slug=SLUG).limit(1).values("id", "config")
        if not rows:
            return None
        zone, retention = install_settings(rows[0]["config"])
        return InstallReader(str(rows[0]["id"]), chat_id, gate, zone, retention)

    async def reread(self, reader: InstallReader) -> InstallReader:
        """The same reader with its install's zone and retention as they are now (as it was, once
        the install is gone)."""
        configs = await UserPlugin.filter(id=reader.install_id).values_list("config", flat=True)
        if not configs:
            return reader
        zone, retention = install_settings(configs[0])
        return InstallReader(reader.install_id, reader.chat_id, reader.gate, zone, retention)

    def key_for(
        self, reader: InstallReader, days: int | None = None, start: date | None = None, end: date | None = None
    ) -> SummaryKey:
        """The summary of the last `days` or of `start` to `end`, in the install's zone, checked."""
        now = self.clock()
        today = today_in(reader.zone, now)
        window = window_of(days, start, end, today, reader.retention)
        return SummaryKey(reader.install_id, reader.chat_id, window.start, window.end, today, reader.zone_name, now)

    async def summary(self, reader: AnalyticsReader, key: SummaryKey) -> Summary:
        """The summary of `key`, read now (eight statements)."""
        snapshots = await read_snapshots([key], reader.gate)
        return await self.summarize(snapshots[key], reader)

    async def summarize(self, snapshot: Snapshot, reader: AnalyticsReader) -> Summary:
        """The summary a snapshot shows; `reader` reads what the snapshot does not hold."""
        answers = SnapshotReader(snapshot, reader)
        key = snapshot.key
        window = key.window
        return Summary(
            snapshot=snapshot,
            unique_users=await answers.active_since(),
            messages_today=(await answers.counts(Window(key.today, key.today))).messages,
            messages_this_week=(await answers.counts(Window.ending(key.today, 7))).messages,
            active_users=await self.active_users(answers, key.today),
            period=await self.period(answers, window, key.today),
            previous_period=await self.previous_period(answers, window),
            reader=answers,
        )

    async def period(self, reader: AnalyticsReader, window: Window, today: date | None = None) -> Period:
        """Sums, never a list of the window's days: a long window costs no more than a short one."""
        ends_today = today is not None and window.end >= today
        return Period(
            window=window,
            counts=await reader.counts(window),
            unique_users=await (reader.active_since(window.start) if ends_today else reader.distinct_users(window)),
            messages_today=(await reader.counts(Window(window.end, window.end))).messages,
            messages_this_week=(await reader.counts(Window.ending(window.end, 7))).messages,
        )

    async def previous_period(self, reader: AnalyticsReader, window: Window) -> Period:
        """Each counter for the window just before its own: yesterday for today, the 7 days before
        the last 7, and the `days` before the current `days` for the rest."""
        before = window.before()
        previous = await self.period(reader, before)
        yesterday = window.end - timedelta(days=1)
        week_before = Window.ending(window.end - timedelta(days=7), 7)
        days = await reader.daily(Window(min(week_before.start, yesterday), yesterday))
        return Period(
            window=before,
            counts=previous.counts,
            unique_users=previous.unique_users,
            messages_today=days[-1].counts.messages,
            messages_this_week=sum(d.counts.messages for d in days if week_before.start <= d.day <= week_before.end),
        )

    async def active_users(self, reader: AnalyticsReader, today: date) -> ActiveUsers:
        daily = await reader.daily(Window(today, today))
        return ActiveUsers(
            day=daily[-1].users,
            week=await reader.active_since(Window.ending(today, 7).start),
            month=await reader.active_since(Window.ending(today, 30).start),
        )

    async def csv(
        self,
        ctx: ServiceContext,
        table: str,
        days: int | None,
        chat_id: int | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> CsvFile | None:
        """The caller's daily series (`table` "daily") or per-chat table ("chats") over the `days`
        ending today or `start` to `end`, in the install's zone, or None when Channel Analytics is
        not installed. BadUserInput for a range it refuses."""
        reader = await self.reader_for(ctx, chat_id)
        if reader is None:
            return None
        key = self.key_for(reader, days, start, end)
        window = key.window
        if table == "daily":
            body = daily_csv(await reader.daily(window))
        else:
            body = chats_csv(await reader.chats(window, MAX_CHATS, key.ends_today))
        return CsvFile(f"analytics-{table}-{window.end.isoformat()}.csv", body)
