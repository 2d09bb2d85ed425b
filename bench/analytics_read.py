"""The cost of reading one install's analytics at 1,000 messages and at 1,000,000.

    .venv/bin/python -m bench.analytics_read [--database-url URL] [--reads 30]

Both installs get the same shape of traffic: 5 chats, a fixed population of 300 users, messages
spread over the last 30 days and all hours. Their aggregate rows are written as the plugin would
have written them for those messages (chat totals, per UTC hour, per day and user, daily user
counts, last-seen days), in bulk. Then the full summary the
widget shows is read `--reads` times for each, and the script prints the mean read time of both
and their ratio: a read's cost follows days and users, not messages, so the ratio stays near 1.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from app.accounts.service import AccountService
from app.analytics.models import ALL_CHATS, AnalyticsChat, AnalyticsDay, AnalyticsDayUser, AnalyticsHour, AnalyticsUser
from app.analytics.reader import AnalyticsReader, Window
from app.analytics.service import AnalyticsService
from app.db import Database
from app.plugins.models import Plugin, UserPlugin

CHATS = [-1001, -1002, -1003, -1004, -1005]
USERS = 300
DAYS = 30


async def populate(install_id: str, messages: int, today: date, seed: int) -> None:
    rng = random.Random(seed)
    hours: Counter[tuple[int, date, int]] = Counter()
    seen: set[tuple[int, date, int]] = set()
    last_day: dict[tuple[int, int], date] = {}
    totals: Counter[int] = Counter()
    for _ in range(messages):
        chat, user = rng.choice(CHATS), rng.randrange(USERS)
        day = today - timedelta(days=rng.randrange(DAYS))
        hours[(chat, day, rng.randrange(24))] += 1
        totals[chat] += 1
        for scope in (chat, ALL_CHATS):
            seen.add((scope, day, user))
            last_day[(scope, user)] = max(day, last_day.get((scope, user), day))
    day_users = Counter((scope, day) for scope, day, _ in seen)
    await AnalyticsChat.bulk_create(
        [
            AnalyticsChat(install_id=install_id, chat_id=c, title=f"Chat {c}", type="supergroup", received=n)
            for c, n in totals.items()
        ]
    )
    await AnalyticsHour.bulk_create(
        [AnalyticsHour(install_id=install_id, chat_id=c, day=d, hour=h, received=n) for (c, d, h), n in hours.items()],
        batch_size=5_000,
    )
    await AnalyticsDayUser.bulk_create(
        [AnalyticsDayUser(install_id=install_id, chat_id=c, day=d, user_id=u) for (c, d, u) in seen], batch_size=5_000
    )
    await AnalyticsDay.bulk_create(
        [AnalyticsDay(install_id=install_id, chat_id=c, day=d, users=n) for (c, d), n in day_users.items()],
        batch_size=5_000,
    )
    await AnalyticsUser.bulk_create(
        [AnalyticsUser(install_id=install_id, chat_id=c, user_id=u, last_day=d) for (c, u), d in last_day.items()],
        batch_size=5_000,
    )


async def read_summary(reader: AnalyticsReader, today: date) -> None:
    """What the widget's query asks for."""
    window = Window.ending(today, 7)
    analytics = AnalyticsService(today=lambda: today)  # holds nothing else: built per call costs nothing
    await reader.lifetime()
    await reader.active_since()
    await reader.daily(Window.ending(today, 30))
    await analytics.active_users(reader, today)
    await reader.hourly(window)
    await analytics.period(reader, window, today)
    await analytics.previous_period(reader, window)
    await reader.chats(window, 20)


async def timed_reads(reader: AnalyticsReader, today: date, reads: int) -> float:
    await read_summary(reader, today)  # warm-up
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        await read_summary(reader, today)
        times.append(time.perf_counter() - started)
    return statistics.mean(times)


async def main(database_url: str, reads: int) -> None:
    db = Database(database_url)
    await db.open(create=True)
    await db.migrate()
    today = datetime.now(UTC).date()
    try:
        with db.bound():
            plugin = (
                await Plugin.get(slug="analytics")
                if await Plugin.exists(slug="analytics")
                else await Plugin.create(slug="analytics", name="Channel Analytics")
            )
            installs = {}
            for size in (1_000, 1_000_000):
                user, _ = await AccountService().create_user(f"bench-{size}-{time.time_ns()}@example.com")
                install = await UserPlugin.create(user_id=user.id, plugin=plugin, config={})
                started = time.perf_counter()
                await populate(install.id, size, today, seed=size)
                print(f"{size:>9,} messages: aggregates written in {time.perf_counter() - started:.1f} s")
                installs[size] = install.id
            small = await timed_reads(AnalyticsReader(installs[1_000]), today, reads)
            large = await timed_reads(AnalyticsReader(installs[1_000_000]), today, reads)
            rows = (
                await AnalyticsHour.filter(install_id=installs[1_000_000]).count(),
                await AnalyticsDayUser.filter(install_id=installs[1_000_000]).count(),
            )
    finally:
        await db.close()
    print(
        f"read at 1k messages: {small * 1000:.1f} ms; at 1M: {large * 1000:.1f} ms ({rows[0]} hour rows, {rows[1]} day-user rows)"
    )
    print(f"ratio 1M / 1k: {large / small:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    url = args.database_url or f"sqlite://{tempfile.mkdtemp()}/analytics_bench.sqlite3"
    asyncio.run(main(url, args.reads))
