"""The demo's past: the community's traffic from some days ago until now, at the live pace, written
straight into Channel Analytics' figures.

Delivered through the webhook, a past that looks alive would take hours, so what happened is
counted here by the analytics plugin's rules (app/analytics/counting.py) and added with the
plugin's own writer (store.record_many, which writes content kinds and posters too): a message or
channel post is received with its kind of content (and counts its sender, with their name, unless
posted on behalf of a chat), a join or leave moves the member count and its service message is
received, and Welcome's reply to each newcomer is sent. What happened is summed per 15-minute
bucket first, as tallies the writer adds up, so the past costs its buckets, not its messages. Each
chat's member count, as the stand-in Bot API tells it, is read at the start of each UTC day, as the
plugin's daily reading would. Runs and the bot's other records start with the live traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.analytics import store
from app.analytics.buckets import BUCKET_SECONDS
from app.analytics.counting import Tally
from app.analytics.models import AnalyticsMemberChat, AnalyticsMemberCount
from app.demo.pace import DAY
from app.demo.traffic import CHAT_BY_ID, CHATS, Traffic

# (chat id, start of the 15-minute bucket, user id or None, kind of content or None) -> [received,
# sent, joins, leaves]: the grain analytics stores (app/analytics/buckets.py), so the past is exact
# in any zone; received messages have a kind, the rest none
Sums = dict[tuple[int, int, int | None, str | None], list[int]]
# (chat id, Unix time, member count): the member counts read in the past
Readings = list[tuple[int, float, int]]


def count_past(
    traffic: Traffic,
    moments: Iterable[float],
    track_users: bool,
    greets: Callable[[int], bool],
    readings: Readings | None = None,
) -> Sums:
    """What the things happening at `moments` add to the figures, summed per chat, bucket and user;
    each chat's member count at the first moment of each UTC day goes into `readings`."""
    sums: Sums = {}
    day: int | None = None

    def add(chat_id: int, bucket: int, user: int | None, column: int, kind: str | None = None) -> None:
        key = (chat_id, bucket, user if track_users else None, kind)
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0, 0, 0, 0]
        row[column] += 1

    for at in moments:
        if readings is not None and int(at) // DAY != day:
            day = int(at) // DAY
            read(traffic, at, readings)
        thing = traffic.next_thing()
        bucket, chat = int(at) // BUCKET_SECONDS * BUCKET_SECONDS, thing.chat.id
        person = thing.person["id"] if thing.person else None
        if thing.kind == "edit":
            continue  # an edit is not a new message
        # a message, a channel post (no person), or a join's or leave's service message
        add(chat, bucket, person, 0, thing.content)
        if thing.kind == "join":
            add(chat, bucket, None, 2)
            if greets(chat):
                add(chat, bucket, None, 1)
        elif thing.kind == "leave":
            add(chat, bucket, None, 3)
    return sums


def read(traffic: Traffic, at: float, readings: Readings) -> None:
    """Each chat's member count at `at`."""
    for chat in CHATS:
        count = traffic.member_count(chat.id)
        if count is not None:
            readings.append((chat.id, at, count))


async def fill_in_members(install_id: str, readings: Readings) -> None:
    """The member counts read in the past, and each chat's last reading as its last read."""
    last: dict[int, datetime] = {}
    rows = []
    for chat_id, at, count in readings:
        moment = datetime.fromtimestamp(at, UTC)
        rows.append(AnalyticsMemberCount(install_id=install_id, chat_id=chat_id, read_at=moment, count=count))
        last[chat_id] = max(moment, last.get(chat_id, moment))
    async with in_transaction():
        await AnalyticsMemberCount.bulk_create(rows, batch_size=1_000)
        await AnalyticsMemberChat.bulk_create(
            [
                AnalyticsMemberChat(
                    install_id=install_id, chat_id=chat_id, title=CHAT_BY_ID[chat_id].title, last_read_at=at
                )
                for chat_id, at in last.items()
            ]
        )


def tallies(sums: Sums, people: dict[int, dict[str, Any]]) -> list[Tally]:
    """The sums as the plugin's tallies: a counted user's carry their name, as their messages show it."""
    names = {user: (person["first_name"], person.get("username")) for user, person in people.items()}
    nameless = (None, None)
    moments: dict[int, datetime] = {}
    found = []
    for (chat_id, bucket, user, kind), (received, sent, joins, leaves) in sums.items():
        chat = CHAT_BY_ID[chat_id]
        moment = moments.get(bucket)
        if moment is None:
            moment = moments[bucket] = datetime.fromtimestamp(bucket, UTC)
        first_name, username = names.get(user, nameless) if user is not None else nameless
        found.append(
            Tally(
                chat_id,
                chat.title,
                chat.kind,
                moment,
                received,
                sent,
                joins,
                leaves,
                user,
                kind,
                first_name,
                username,
            )
        )
    return found


async def fill_in(install_id: str, sums: Sums, people: dict[int, dict[str, Any]], batch: int = 5_000) -> None:
    """Adds the sums to the install's figures with the plugin's writer, in one transaction."""
    found = tallies(sums, people)
    async with in_transaction():
        for start in range(0, len(found), batch):
            await store.record_many([(install_id, tally) for tally in found[start : start + batch]])
