"""Member counts: what Telegram's answers and the bot's own membership changes mean, and the
daily series a chat's readings make. Pure: no I/O.

The member count is Telegram's own figure (getChatMemberCount), read once a day per chat, when a
chat is first seen, and when the bot joins a chat or is promoted in one. Joins and leaves are
counted from `chat_member` updates apart from it (app/analytics/counting.py): the two can differ,
since a bot is not told of every leave, and neither corrects the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.analytics.counting import is_member
from app.telegram.light import LightMemberUpdate

# The plugin's notice that a chat's member state was written: open summaries read it again.
MEMBERS_TOPIC = "members"
ADMIN_STATUSES = frozenset({"administrator", "creator"})
REMOVED_REASONS = {
    "kicked": "The bot was removed from the chat",
    "left": "The bot left the chat",
}


class BotChange(StrEnum):
    JOINED = "joined"
    PROMOTED = "promoted"
    REMOVED = "removed"


def bot_change(update: LightMemberUpdate) -> BotChange | None:
    """What a change of the bot's own status means for reading the chat's count: joined or
    promoted (read it now), removed (stop reading it), or nothing to do."""
    old, new = update.old_chat_member, update.new_chat_member
    before, after = is_member(old), is_member(new)
    if after and not before:
        return BotChange.JOINED
    if before and not after:
        return BotChange.REMOVED
    if after and new.status in ADMIN_STATUSES and old.status not in ADMIN_STATUSES:
        return BotChange.PROMOTED
    return None


def removed_reason(update: LightMemberUpdate) -> str:
    return REMOVED_REASONS.get(update.new_chat_member.status, "The bot is no longer a member of the chat")


def unavailable_reason(error_code: int | None, description: str | None) -> str | None:
    """Telegram's words when a refusal means the chat cannot be read until the bot is added back
    (403 "Forbidden: bot was kicked from the supergroup chat", "…bot is not a member…", 400 "Bad
    Request: chat not found", or "…group chat was upgraded to a supergroup chat"); None for a
    refusal that says nothing about the chat."""
    text = (description or "").strip()
    lowered = text.lower()
    if error_code == 403 or (error_code == 400 and "chat not found" in lowered):
        return text or "Telegram refused to read the chat"
    if "not a member" in lowered or "was kicked" in lowered or "upgraded to a supergroup" in lowered:
        return text  # a group upgraded to a supergroup lives on under a new id, seen at its first message
    return None


@dataclass(frozen=True)
class MemberDay:
    day: date
    count: int


@dataclass(frozen=True)
class MemberSeries:
    """`current`: the count now (the window's last day), None when no chat has a known count;
    `change`: over the window; `daily`: one entry per local day from the first with a known count."""

    current: int | None
    change: int | None
    daily: list[MemberDay]


def member_series(
    readings: Mapping[int, Sequence[tuple[datetime, int | None]]],
    before: Mapping[int, int | None],
    gone: Mapping[int, datetime],
    days: Sequence[tuple[date, datetime]],
) -> MemberSeries:
    """The series of local `days` (each with the UTC instant it ends), oldest first.

    `readings`: each chat's readings within the window, oldest first (a None count: the bot could
    no longer read it from then); `before`: each chat's last reading before the window; `gone`:
    when each chat unavailable now became so. A chat counts on a day
    with its last reading before the day's end, carried forward, unless it was gone by then.
    Each chat's change is its count on the last day less its count before the window (or its first
    reading in it, for a chat first read within the window); `change` adds those of the chats that
    count on the last day."""
    chats = sorted(set(readings) | set(before))
    counts: dict[int, int | None] = {chat: before.get(chat) for chat in chats}
    next_reading = dict.fromkeys(chats, 0)
    daily: list[MemberDay] = []
    last: dict[int, int] = {}
    for day, end in days:
        last = {}
        for chat in chats:  # each chat's readings are walked once over all the days
            mine, n = readings.get(chat, ()), next_reading[chat]
            while n < len(mine) and mine[n][0] < end:
                counts[chat], n = mine[n][1], n + 1
            next_reading[chat] = n
            count = counts[chat]
            if count is not None and not (chat in gone and gone[chat] < end):
                last[chat] = count
        if last:
            daily.append(MemberDay(day, sum(last.values())))
    if not daily or daily[-1].day != days[-1][0]:  # no count known on the window's last day
        return MemberSeries(None, None, daily)
    change = 0
    for chat, count in last.items():
        baseline = before.get(chat)
        if baseline is None:  # first read (or read again) within the window: from its first count in it
            baseline = next(found for _, found in readings[chat] if found is not None)
        change += count - baseline
    return MemberSeries(daily[-1].count, change, daily)
