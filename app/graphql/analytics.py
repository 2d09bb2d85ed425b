"""Channel Analytics over GraphQL: `Query.analytics` and `Subscription.analyticsUpdated`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import date

import strawberry

from app import live
from app.analytics import service as analytics
from app.analytics.reader import AnalyticsReader, Counts, Window
from app.analytics.shared_reads import SharedReads, summary_span
from app.errors import BadUserInput, FieldError, NotInstalled, Unauthenticated
from app.graphql.context import GraphQLContext

Info = strawberry.Info[GraphQLContext, None]

# At most this many pushes a second per subscriber; the state after the last change always follows.
MIN_PUSH_INTERVAL_SECONDS = 0.25


@strawberry.type
class DailyStat:
    date: date
    messages: int
    users: int
    joins: int
    leaves: int


@strawberry.type
class ActiveUsers:
    day: int = strawberry.field(description="Distinct users on today's UTC date.")
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


@strawberry.type(description="The caller's analytics; dates and hours are UTC.")
class AnalyticsSummary:
    reader: strawberry.Private[AnalyticsReader]
    today: strawberry.Private[date]
    window: strawberry.Private[Window]

    @classmethod
    def of(cls, reader: AnalyticsReader, today: date, days: int) -> AnalyticsSummary:
        """Its fields resolve concurrently and share their reads (each one once per summary)."""
        return cls(
            reader=SharedReads(reader, summary_span(today, days)), today=today, window=Window.ending(today, days)
        )

    async def lifetime(self) -> Counts:
        return await self.reader.lifetime()

    @strawberry.field(description="Messages received and sent since the plugin was installed.")
    async def total_messages(self) -> int:
        return (await self.lifetime()).messages

    @strawberry.field
    async def messages_received(self) -> int:
        return (await self.lifetime()).received

    @strawberry.field
    async def messages_sent(self) -> int:
        return (await self.lifetime()).sent

    @strawberry.field(description="Distinct users within the retention window.")
    async def unique_users(self) -> int:
        return await self.reader.active_since()

    @strawberry.field(description="Messages on today's UTC date.")
    async def messages_today(self) -> int:
        return (await self.reader.counts(Window(self.today, self.today))).messages

    @strawberry.field(description="Messages in the last 7 days, today included.")
    async def messages_this_week(self) -> int:
        return (await self.reader.counts(Window.ending(self.today, 7))).messages

    @strawberry.field(description="Exactly `days` entries, oldest first, zero-filled; the last is today.")
    async def daily(self, days: int = 7) -> list[DailyStat]:
        window = Window.ending(self.today, analytics.check_days(days))
        return [
            DailyStat(
                date=d.day, messages=d.counts.messages, users=d.users, joins=d.counts.joins, leaves=d.counts.leaves
            )
            for d in await self.reader.daily(window)
        ]

    @strawberry.field
    async def active_users(self, info: Info) -> ActiveUsers:
        figures = await info.context.platform.analytics.active_users(self.reader, self.today)
        return ActiveUsers(day=figures.day, week=figures.week, month=figures.month)

    @strawberry.field(description="24 message counts by UTC hour of day over the window.")
    async def hourly(self) -> list[int]:
        return await self.reader.hourly(self.window)

    @strawberry.field(description="The counters over the window.")
    async def period(self, info: Info) -> AnalyticsPeriod:
        return AnalyticsPeriod.of(await info.context.platform.analytics.period(self.reader, self.window, self.today))

    @strawberry.field(
        description="The same counters for the window before: yesterday for messagesToday, the 7 days "
        "before for messagesThisWeek, the `days` before the window for the rest."
    )
    async def previous_period(self, info: Info) -> AnalyticsPeriod:
        return AnalyticsPeriod.of(await info.context.platform.analytics.previous_period(self.reader, self.window))

    @strawberry.field(description="Chats by messages in the window, busiest first.")
    async def chats(self, limit: int = 20) -> list[ChatStat]:
        if not 1 <= limit <= analytics.MAX_CHATS:
            raise BadUserInput(f"limit must be 1 to {analytics.MAX_CHATS}", [FieldError("/limit", "out of range")])
        return [
            ChatStat(
                chat_id=strawberry.ID(str(c.chat_id)),
                title=c.title,
                type=c.type,
                messages=c.counts.messages,
                users=c.users,
                total_messages=c.total.messages,
            )
            for c in await self.reader.chats(self.window, limit)
        ]


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="The caller's Channel Analytics, optionally for one chat: null when the plugin is not "
        "installed, zeros before the first message."
    )
    async def analytics(
        self, info: Info, chat_id: strawberry.ID | None = None, days: int = 7
    ) -> AnalyticsSummary | None:
        ctx = info.context.require_user()
        analytics.check_days(days)
        service = info.context.platform.analytics
        reader = await service.reader_for(ctx, analytics.parse_chat_id(chat_id))
        if reader is None:
            return None
        return AnalyticsSummary.of(reader, service.today(), days)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The caller's analytics now, then again after each change (bursts coalesced).")
    async def analytics_updated(
        self, info: Info, chat_id: strawberry.ID | None = None, days: int = 7
    ) -> AsyncGenerator[AnalyticsSummary, None]:
        ctx = info.context.require_user()
        analytics.check_days(days)
        chat = analytics.parse_chat_id(chat_id)
        platform = info.context.platform
        service = platform.analytics
        gate = platform.summary_reads  # every read of every summary, the token's check included
        async with platform.live.watch(*live_channels(ctx.user_id, chat)) as changes:
            reader = await service.reader_for(ctx, chat, gate)
            if reader is None:
                raise NotInstalled("Channel Analytics is not installed")
            yield AnalyticsSummary.of(reader, service.today(), days)
            while True:
                await changes.wait()  # the changes while a summary was read and sent count as one
                async with gate:
                    signed_in = await info.context.recheck_token()
                if not signed_in:  # revoked or expired meanwhile
                    raise Unauthenticated("The API token is not valid")
                yield AnalyticsSummary.of(reader, service.today(), days)
                await asyncio.sleep(MIN_PUSH_INTERVAL_SECONDS)


def live_channels(user_id: str, chat_id: int | None) -> tuple[str, ...]:
    """What a summary watches: any change of the user's, or one chat's changes and the pruning
    that touches every chat (app/plugins/handlers/analytics.py notifies them)."""
    if chat_id is None:
        return (live.channel(user_id, analytics.SLUG, "updated"),)
    return (live.channel(user_id, analytics.SLUG, f"chat:{chat_id}"), live.channel(user_id, analytics.SLUG, "pruned"))
