"""Live analytics summaries: one stream per (install, chat filter, zone, range) in a process,
whoever shows it.

Every live subscription to the same user's summary with the same chat filter, zone and range (the
last `days`, which moves with the zone's midnight, or `from` to `to`), whatever
its document or token, follows one stream: the summary is read once per change for all of them.
The stream sends the current summary, then one after each change, at most one every
`min_interval` seconds, and always the state after the last change. The streams woken by the same
burst of changes read their summaries together (app/batched_loads.py, `read_snapshots`): a burst
across many users costs a few statements, not a few per user.

A change of the install's config (its zone, its retention) reaches the open streams too: the
next summary is in the new zone.

Member counts change far less often than the messages: a stream reads them again only when a
reading was written (the plugin's `members` notice), days were pruned, or its window or zone
moved, and otherwise shows the ones it read last. The streams that one notice wakes (a chat's first
message marks it for a reading: every stream of its user) read theirs together too.

A stream is its install's alone (the key holds the install, which only its owner's reader names),
so a user never sees another's figures. Whether a follower may still see them (its token) is the
follower's own check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date

from app import live
from app.analytics.buckets import zone_named
from app.analytics.member_reader import MemberFigures, member_figures_of
from app.analytics.member_rules import MEMBERS_TOPIC
from app.analytics.reader import Window
from app.analytics.service import SLUG, AnalyticsService, InstallReader, Summary
from app.analytics.snapshots import Snapshot, SummaryKey, read_snapshots
from app.batched_loads import BatchedLoads

# At most this many pushes a second per subscriber; the state after the last change always follows.
MIN_PUSH_INTERVAL_SECONDS = 0.25

# Whose member figures a stream shows: (install, chat filter, zone, window start, window end).
MembersKey = tuple[str, int | None, str, date, date]


def live_channels(user_id: str, chat_id: int | None) -> tuple[str, ...]:
    """What a summary watches: any change of the user's, or one chat's changes and the pruning
    that touches every chat (app/plugins/handlers/analytics.py notifies them)."""
    if chat_id is None:
        return (live.channel(user_id, SLUG, "updated"),)
    return (live.channel(user_id, SLUG, f"chat:{chat_id}"), live.channel(user_id, SLUG, "pruned"))


class LiveSummaries:
    """Built by app/platform.py, reached as `platform.live_summaries`. `gate`: what every read of
    every live summary waits for (SUBSCRIPTION_READ_CONCURRENCY)."""

    def __init__(
        self,
        service: AnalyticsService,
        updates: live.LiveUpdates,
        gate: asyncio.Semaphore,
        min_interval: float = MIN_PUSH_INTERVAL_SECONDS,
    ) -> None:
        self.service = service
        self.updates = updates
        self.gate = gate
        self.min_interval = min_interval
        self.snapshots: BatchedLoads[SummaryKey, Snapshot] = BatchedLoads(self._read)
        self.members: BatchedLoads[MembersKey, MemberFigures] = BatchedLoads(self._read_members)
        self.streams = live.SharedStates()  # this process's summary streams, by key

    async def _read(self, keys: Sequence[SummaryKey]) -> dict[SummaryKey, Snapshot]:
        return await read_snapshots(keys, self.gate)

    async def _read_members(self, keys: Sequence[MembersKey]) -> dict[MembersKey, MemberFigures]:
        """The member figures of many streams: the same three statements for the installs of each
        chat filter, zone and window."""
        groups: dict[tuple[int | None, str, date, date], list[str]] = {}
        for install_id, chat_id, zone, start, end in keys:
            groups.setdefault((chat_id, zone, start, end), []).append(install_id)
        figures: dict[MembersKey, MemberFigures] = {}
        for (chat_id, zone, start, end), installs in groups.items():
            async with self.gate:
                read = await member_figures_of(installs, chat_id, start, end, zone_named(zone))
            figures.update({(install, chat_id, zone, start, end): read[install] for install in installs})
        return figures

    @contextlib.asynccontextmanager
    async def follow(
        self, user_id: str, reader: InstallReader, days: int | None, start: date | None = None, end: date | None = None
    ) -> AsyncIterator[AsyncIterator[Summary]]:
        """The summaries of the user's `reader` (their own install, one chat or all, in its zone)
        over the last `days` or `start` to `end` (checked by the caller: AnalyticsService.key_for)."""
        key = ("analytics-summary", user_id, reader.install_id, reader.chat_id, reader.zone_name, days, start, end)

        def produce() -> AsyncGenerator[Summary | Exception, None]:
            return self._stream(user_id, reader, days, start, end)

        async with (
            self.streams.follow(key, produce) as states,
            contextlib.aclosing(_raising(states)) as summaries,
        ):
            yield summaries

    async def _stream(
        self, user_id: str, reader: InstallReader, days: int | None, start: date | None, end: date | None
    ) -> AsyncGenerator[Summary | Exception, None]:
        """A failure is the stream's last state: each follower raises it."""
        settings = live.channel(user_id, SLUG, live.CONFIG_TOPIC)
        members_read = (live.channel(user_id, SLUG, MEMBERS_TOPIC), live.channel(user_id, SLUG, "pruned"))
        members = KnownMembers(self.members.load)
        try:
            async with self.updates.watch(*live_channels(user_id, reader.chat_id), settings, *members_read) as changes:
                yield await self._summary(reader, self.service.key_for(reader, days, start, end), members)
                while True:
                    await changes.wait()  # the changes while a summary was read count as one
                    if changes.take(settings):  # a new zone or retention applies from now on
                        reader = await self.service.reread(reader)
                    if changes.take(*members_read):
                        members.forget()
                    yield await self._summary(reader, self.service.key_for(reader, days, start, end), members)
                    await asyncio.sleep(self.min_interval)
        except Exception as exc:  # noqa: BLE001 - the followers' to raise, as their own read would have
            yield exc

    async def _summary(self, reader: InstallReader, key: SummaryKey, members: KnownMembers) -> Summary:
        snapshot = await self.snapshots.load(key)
        summary = await self.service.summarize(snapshot, reader)
        return replace(summary, members=await members.of(reader, summary.window))


class KnownMembers:
    """The member figures a stream read last, for the install, chat filter, zone and window it
    read them for; read again (by `load`) when any of those moves or after `forget`."""

    def __init__(self, load: Callable[[MembersKey], Awaitable[MemberFigures]]) -> None:
        self._load = load
        self._read_for: MembersKey | None = None
        self._figures: MemberFigures | None = None

    def forget(self) -> None:
        self._read_for = self._figures = None

    async def of(self, reader: InstallReader, window: Window) -> MemberFigures:
        wanted = (reader.install_id, reader.chat_id, reader.zone_name, window.start, window.end)
        if self._figures is None or self._read_for != wanted:
            self._figures = await self._load(wanted)
            self._read_for = wanted
        return self._figures


async def _raising(states: AsyncIterator[Summary | Exception]) -> AsyncGenerator[Summary, None]:
    async for state in states:
        if isinstance(state, Exception):
            raise state
        yield state
