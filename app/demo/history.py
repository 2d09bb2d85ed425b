"""The demo's past: the community's traffic from some days ago until now, at the live pace, written
straight into Channel Analytics' figures.

Delivered through the webhook, a past that looks alive would take hours, so what happened is
counted here by the analytics plugin's rules (app/analytics/counting.py) and added with the
plugin's own writer: a message or channel post is received (and counts its sender, unless posted
on behalf of a chat), a join or leave moves the member count and its service message is received,
and Welcome's reply to each newcomer is sent. Runs and the bot's other records start with the live
traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from app.analytics import store
from app.analytics.buckets import BUCKET_SECONDS
from app.analytics.counting import Tally
from app.demo.traffic import CHAT_BY_ID, Traffic

# (chat id, start of the 15-minute bucket, user id or None) -> [received, sent, joins, leaves]:
# the grain analytics stores (app/analytics/buckets.py), so the past is exact in any zone
Sums = dict[tuple[int, int, int | None], list[int]]


def count_past(traffic: Traffic, moments: Iterable[float], track_users: bool, greets: Callable[[int], bool]) -> Sums:
    """What the things happening at `moments` add to the figures, summed per chat, bucket and user."""
    sums: Sums = {}

    def add(chat_id: int, bucket: int, user: int | None, column: int) -> None:
        key = (chat_id, bucket, user if track_users else None)
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0, 0, 0, 0]
        row[column] += 1

    for at in moments:
        thing = traffic.next_thing()
        bucket, chat = int(at) // BUCKET_SECONDS * BUCKET_SECONDS, thing.chat.id
        person = thing.person["id"] if thing.person else None
        if thing.kind == "edit":
            continue  # an edit is not a new message
        add(chat, bucket, person, 0)  # a message, a channel post (no person), or a join's or leave's service message
        if thing.kind == "join":
            add(chat, bucket, None, 2)
            if greets(chat):
                add(chat, bucket, None, 1)
        elif thing.kind == "leave":
            add(chat, bucket, None, 3)
    return sums


def tallies(sums: Sums) -> list[Tally]:
    return [
        Tally(
            chat_id,
            CHAT_BY_ID[chat_id].title,
            CHAT_BY_ID[chat_id].kind,
            datetime.fromtimestamp(bucket, UTC),
            received=received,
            sent=sent,
            joins=joins,
            leaves=leaves,
            user_id=user,
        )
        for (chat_id, bucket, user), (received, sent, joins, leaves) in sums.items()
    ]


async def fill_in(install_id: str, sums: Sums, batch: int = 5_000) -> None:
    """Adds the sums to the install's figures, in one transaction."""
    found = tallies(sums)
    async with in_transaction():
        for start in range(0, len(found), batch):
            await store.record_many([(install_id, tally) for tally in found[start : start + batch]])
