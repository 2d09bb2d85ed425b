"""Channel Analytics over GraphQL: `Query.analytics` and `Subscription.analyticsUpdated`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import date, datetime
from typing import Annotated

import strawberry

from app.analytics import service as analytics
from app.analytics.live_summaries import MIN_PUSH_INTERVAL_SECONDS
from app.analytics.member_reader import MemberFigures, last_counts, read_members
from app.analytics.ranges import check_shape
from app.analytics.reader import DayStat, Window
from app.analytics.service import InstallReader
from app.analytics.snapshots import SnapshotReader, SummaryKey
from app.errors import BadUserInput, FieldError, NotInstalled, Unauthenticated
from app.graphql.analytics_posting import ContentCount, TopPoster, content_of, top_posters_of
from app.graphql.context import GraphQLContext

Info = strawberry.Info[GraphQLContext, None]

__all__ = ["MIN_PUSH_INTERVAL_SECONDS", "AnalyticsQuery", "AnalyticsSummary", "Subscription"]


@strawberry.type
class DailyStat:
    date: date
    messages: int
    users: int
    joins: int
    leaves: int


@strawberry.type
class ActiveUsers:
    day: int = strawberry.field(description="Distinct users today, in the install's time zone.")
    week: int = strawberry.field(description="Distinct users in the last 7 days, today included.")
    month: int = strawberry.field(description="Distinct users in the last 30 days, today included.")


@strawberry.type(description="Counters over one window of days.")
class AnalyticsPeriod:
    start: date
    end: date
    total_messages: int = strawberry.field(description="Messages received and sent in the window.")
    messages_received: int
    messages_sent: int
    unique_users: int
    joins: int
    leaves: int
    messages_today: int = strawberry.field(
        description="Messages on the window's last day (yesterday, for previousPeriod)."
    )
    messages_this_week: int = strawberry.field(
        description="Messages in the 7 days ending on the window's last day's week."
    )

    @classmethod
    def of(cls, period: analytics.Period) -> AnalyticsPeriod:
        return cls(
            start=period.window.start,
            end=period.window.end,
            total_messages=period.counts.messages,
            messages_received=period.counts.received,
            messages_sent=period.counts.sent,
            unique_users=period.unique_users,
            joins=period.counts.joins,
            leaves=period.counts.leaves,
            messages_today=period.messages_today,
            messages_this_week=period.messages_this_week,
        )


@strawberry.type
class ChatStat:
    chat_id: strawberry.ID
    title: str | None
    type: str | None
    messages: int = strawberry.field(description="Messages in the window.")
    users: int = strawberry.field(description="Distinct users in the window.")
    total_messages: int = strawberry.field(description="Messages since the plugin was installed.")
    member_counts: strawberry.Private[Callable[[], Awaitable[dict[int, int]]]]

    @strawberry.field(
        description="The chat's last member count read from Telegram; null before the first reading, and once "
        "the bot was removed from the chat (see members.unavailable)."
    )
    async def member_count(self) -> int | None:
        return (await self.member_counts()).get(int(self.chat_id))


class _Once:
    """The listed chats' member counts, read when the first chat asks for its own (one read for all)."""

    def __init__(self, install_id: str, chat_ids: list[int], gate: asyncio.Semaphore | None) -> None:
        self.install_id, self.chat_ids, self.gate = install_id, chat_ids, gate
        self._task: asyncio.Task[dict[int, int]] | None = None

    def __call__(self) -> Awaitable[dict[int, int]]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._read())
        return asyncio.shield(self._task)

    async def _read(self) -> dict[int, int]:
        async with self.gate if self.gate is not None else contextlib.nullcontext():
            return await last_counts(self.install_id, self.chat_ids)


@strawberry.type(description="A day's member count.")
class MemberCount:
    date: date = strawberry.field(description="The day, in the install's time zone (`timezone`).")
    count: int = strawberry.field(
        description="Members at the day's end: each chat's last count read by then (carried forward from "
        "earlier days), added up over the chats the bot could still read."
    )


@strawberry.type(description="A chat whose member count cannot be read: the bot was removed from it.")
class UnavailableChat:
    chat_id: strawberry.ID = strawberry.field(description="The chat's Telegram id.")
    title: str | None = strawberry.field(description="The chat's name, as last seen.")
    reason: str = strawberry.field(
        description="Why, in Telegram's words when Telegram refused the read (e.g. \"Forbidden: bot was kicked "
        "from the supergroup chat\"), else what the bot's membership update said."
    )
    since: datetime = strawberry.field(
        description="When it was first found so. It is not read again until the bot is added back."
    )


@strawberry.type(
    description="Member counts: Telegram's own figure (getChatMemberCount), read once a day per chat, when a chat "
    "is first seen, and when the bot is added or promoted. Joins and leaves are counted apart, from "
    "chat_member updates, and the two may differ: a bot is not told of every leave."
)
class MemberStats:
    current: int | None = strawberry.field(
        description="Members now: the sum of each chat's last count (one chat's, with chatId). Null when no "
        "chat the bot is in has been read."
    )
    change: int | None = strawberry.field(
        description="Growth over the window: for each chat counted now, its count now less its count at the "
        "window's start (its first count, for a chat first read within the window). Null when current is."
    )
    daily: list[MemberCount] = strawberry.field(
        description="One entry per day of the window, oldest first, from the first day with a known count; each "
        "day carries the last known counts forward, and the series ends on the last known count."
    )
    unavailable: list[UnavailableChat] = strawberry.field(
        description="Chats the bot was removed from (or that Telegram no longer finds), newest first: they are "
        "no longer read, and count in no day from when that was found."
    )

    @classmethod
    def of(cls, figures: MemberFigures) -> MemberStats:
        series = figures.series
        return cls(
            current=series.current,
            change=series.change,
            daily=[MemberCount(date=d.day, count=d.count) for d in series.daily],
            unavailable=[
                UnavailableChat(chat_id=strawberry.ID(str(c.chat_id)), title=c.title, reason=c.reason, since=c.since)
                for c in figures.unavailable
            ],
        )


def _daily(root: AnalyticsSummary, days: int | None = None) -> list[DailyStat] | Awaitable[list[DailyStat]]:
    """From what was read when it holds the window (the whole execution then stays synchronous),
    else read now."""
    window = root.summary.window
    if days is not None:
        window = Window.ending(window.end, analytics.check_days(days))
    held = root.summary.reader.held_daily(window)
    return _daily_stats(held) if held is not None else _read_daily(root.summary.reader, window)


async def _read_daily(reader: SnapshotReader, window: Window) -> list[DailyStat]:
    return _daily_stats(await reader.daily(window))


@strawberry.type(description="The caller's analytics; dates and hours are in the install's time zone (`timezone`).")
class AnalyticsSummary:
    """One summary's figures, read before it resolves (app/analytics/snapshots.py). The fields
    without arguments are plain attributes, set once from the summary (`of`), so the executor
    completes them in one step (app/graphql/execution.py); those with arguments pick from it, and a
    `daily(days)` longer than what was read reads the rest."""

    summary: strawberry.Private[analytics.Summary]
    total_messages: int = strawberry.field(description="Messages received and sent since the plugin was installed.")
    messages_received: int
    messages_sent: int
    unique_users: int = strawberry.field(description="Distinct users within the retention window.")
    timezone: str = strawberry.field(
        description="The IANA time zone every date and hour here is in (the install's `timezone`)."
    )
    messages_today: int = strawberry.field(description="Messages today, in the install's time zone.")
    messages_this_week: int = strawberry.field(description="Messages in the last 7 days, today included.")
    daily: list[DailyStat] = strawberry.field(  # type: ignore[assignment]  # a resolver, kept in its place
        description="One entry per day, oldest first, zero-filled: the summary's days (`from` to `to`, "
        "or the last `days`) when `days` is left out, else exactly `days` entries ending on the summary's last day.",
        resolver=_daily,
        graphql_type=list[DailyStat],
    )
    active_users: ActiveUsers
    hourly: list[int] = strawberry.field(
        description="24 message counts by hour of day, in the install's time zone, over the window."
    )
    period: AnalyticsPeriod = strawberry.field(description="The counters over the window.")
    previous_period: AnalyticsPeriod = strawberry.field(
        description="The same counters for the window before: yesterday for messagesToday, the 7 days "
        "before for messagesThisWeek, as many days just before the window for the rest."
    )

    @classmethod
    def of(cls, summary: analytics.Summary) -> AnalyticsSummary:
        figures = summary.active_users
        return cls(
            summary=summary,
            total_messages=summary.lifetime.messages,
            messages_received=summary.lifetime.received,
            messages_sent=summary.lifetime.sent,
            unique_users=summary.unique_users,
            timezone=summary.timezone,
            messages_today=summary.messages_today,
            messages_this_week=summary.messages_this_week,
            active_users=ActiveUsers(day=figures.day, week=figures.week, month=figures.month),
            hourly=list(summary.snapshot.hourly),
            period=AnalyticsPeriod.of(summary.period),
            previous_period=AnalyticsPeriod.of(summary.previous_period),
        )

    @strawberry.field(description="Member counts over the window, from Telegram's own figure.")
    async def members(self) -> MemberStats:
        figures = self.summary.members  # read with a live summary
        if figures is None:
            figures = await read_members(self.summary.reader, self.summary.window)
        return MemberStats.of(figures)

    @strawberry.field(description="Chats by messages in the window, busiest first.")
    def chats(self, limit: int = 20) -> list[ChatStat]:
        if not 1 <= limit <= analytics.MAX_CHATS:
            raise BadUserInput(f"limit must be 1 to {analytics.MAX_CHATS}", [FieldError("/limit", "out of range")])
        listed = self.summary.snapshot.chats[:limit]
        counts = _Once(self.summary.snapshot.key.install_id, [c.chat_id for c in listed], self.summary.reader.gate)
        return [
            ChatStat(
                chat_id=strawberry.ID(str(c.chat_id)),
                title=c.title,
                type=c.type,
                messages=c.counts.messages,
                users=c.users,
                total_messages=c.total.messages,
                member_counts=counts,
            )
            for c in listed
        ]

    @strawberry.field(
        description="Received messages in the window by kind of content: every kind, in ContentKind's "
        "order, with 0 for a kind not posted."
    )
    async def content(self) -> list[ContentCount]:
        return await content_of(self.summary)

    @strawberry.field(
        description="Users by messages posted in the window, most first (ties by user id), 1 to 50; "
        "empty with trackUsers off. Bots and messages on behalf of a chat are not posters."
    )
    async def top_posters(self, limit: int = 10) -> list[TopPoster]:
        return await top_posters_of(self.summary, limit)


def _daily_stats(days: list[DayStat]) -> list[DailyStat]:
    return [
        DailyStat(date=d.day, messages=d.counts.messages, users=d.users, joins=d.counts.joins, leaves=d.counts.leaves)
        for d in days
    ]


RANGE = (
    "The window: the last `days` (default 7), today included, or the days `from` to `to` (dates in the "
    "install's time zone, both included, within retention and no later than tomorrow); not both."
)


def _key(info: Info, reader: InstallReader, days: int | None, start: date | None, end: date | None) -> SummaryKey:
    return info.context.platform.analytics.key_for(reader, days, start, end)


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="The caller's Channel Analytics, optionally for one chat: null when the plugin is not "
        "installed, zeros before the first message. " + RANGE
    )
    async def analytics(
        self,
        info: Info,
        chat_id: strawberry.ID | None = None,
        days: int | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> AnalyticsSummary | None:
        ctx = info.context.require_user()
        check_shape(days, from_, to)  # before any read
        service = info.context.platform.analytics
        reader = await service.reader_for(ctx, analytics.parse_chat_id(chat_id))
        if reader is None:
            return None
        return AnalyticsSummary.of(await service.summary(reader, _key(info, reader, days, from_, to)))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The caller's analytics now, then again after each change (bursts coalesced). " + RANGE
    )
    async def analytics_updated(
        self,
        info: Info,
        chat_id: strawberry.ID | None = None,
        days: int | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> AsyncGenerator[AnalyticsSummary, None]:
        ctx = info.context.require_user()
        check_shape(days, from_, to)
        chat = analytics.parse_chat_id(chat_id)
        platform = info.context.platform
        gate = platform.summary_reads  # every read of every summary, the token's check included
        reader = await platform.analytics.reader_for(ctx, chat, gate)
        if reader is None:
            raise NotInstalled("Channel Analytics is not installed")
        _key(info, reader, days, from_, to)  # the range, checked against the install's retention and today
        # The summary is read once per change for every subscription that shows it, in any document
        # (app/analytics/live_summaries.py); at most 4 a second, and always the last state.
        async with platform.live_summaries.follow(ctx.user_id, reader, days, from_, to) as summaries:
            first = True
            async for summary in summaries:
                if not first and not info.context.shared:  # a shared execution's followers check their own
                    async with gate:
                        signed_in = await info.context.recheck_token()
                    if not signed_in:  # revoked or expired meanwhile
                        raise Unauthenticated("The API token is not valid")
                first = False
                yield AnalyticsSummary.of(summary)
