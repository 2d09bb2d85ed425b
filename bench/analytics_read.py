"""The cost of reading one install's analytics at 1,000 messages and at 1,000,000, in UTC and in
Asia/Kolkata.

    .venv/bin/python -m bench.analytics_read [--database-url URL] [--reads 30]

Both installs get the same shape of traffic: 5 chats, a fixed population of 300 users, messages at
random instants over the last 30 days. Their aggregate rows are written as the plugin would have
written them for those messages (chat totals, per 15-minute bucket, per UTC day and user with the
mask of quarters seen, last-seen buckets), in bulk. Then the summary `Query.analytics(from, to)`
reads for the 30 days ending today (its eight statements: the daily series, the hourly profile, the
period and the previous period, active users, the busiest chats) is read `--reads` times for each
install and zone, and the script prints the mean wall and CPU time of a read and the ratios 1M / 1k:
a read's cost follows days and users, not messages, so the ratios stay near 1. It also prints the
first read of each, which rolls up the closed days (app/analytics/closed_days.py) and costs what every
read cost before them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from app.accounts.service import AccountService
from app.analytics.models import ALL_CHATS, AnalyticsBucket, AnalyticsChat, AnalyticsSeen, AnalyticsUserDay
from app.analytics.service import AnalyticsService, InstallReader
from app.analytics.snapshots import SummaryKey
from app.analytics.zoned import QUARTERS, quarter_bits
from app.db import Database
from app.plugins.models import Plugin, UserPlugin
from bench.ratios import report

CHATS = [-1001, -1002, -1003, -1004, -1005]
USERS = 300
DAYS = 30
ZONES = ("UTC", "Asia/Kolkata")


async def populate(install_id: str, messages: int, now: datetime, seed: int) -> None:
    rng = random.Random(seed)
    last = int(now.timestamp()) // 900
    buckets: Counter[tuple[int, int]] = Counter()
    masks: dict[tuple[int, int, int], list[int]] = {}
    seen: dict[tuple[int, int], int] = {}
    totals: Counter[int] = Counter()
    for _ in range(messages):
        chat, user = rng.choice(CHATS), rng.randrange(USERS)
        bucket = last - rng.randrange(DAYS * QUARTERS)
        buckets[(chat, bucket)] += 1
        totals[chat] += 1
        low, high = quarter_bits(bucket % QUARTERS)
        for scope in (chat, ALL_CHATS):
            mask = masks.setdefault((scope, bucket // QUARTERS, user), [0, 0])
            mask[0] |= low
            mask[1] |= high
            seen[(scope, user)] = max(bucket, seen.get((scope, user), bucket))
    await AnalyticsChat.bulk_create(
        [
            AnalyticsChat(install_id=install_id, chat_id=c, title=f"Chat {c}", type="supergroup", received=n)
            for c, n in totals.items()
        ]
    )
    await AnalyticsBucket.bulk_create(
        [AnalyticsBucket(install_id=install_id, chat_id=c, bucket=b, received=n) for (c, b), n in buckets.items()],
        batch_size=5_000,
    )
    await AnalyticsUserDay.bulk_create(
        [
            AnalyticsUserDay(install_id=install_id, chat_id=c, day=d, user_id=u, quarters_low=m[0], quarters_high=m[1])
            for (c, d, u), m in masks.items()
        ],
        batch_size=5_000,
    )
    await AnalyticsSeen.bulk_create(
        [AnalyticsSeen(install_id=install_id, chat_id=c, user_id=u, last_bucket=b) for (c, u), b in seen.items()],
        batch_size=5_000,
    )


async def new_install(label: str) -> str:
    """A new user's Channel Analytics install (the catalog's row made first if it is missing); its id."""
    plugin, _ = await Plugin.get_or_create(slug="analytics", defaults={"name": "Channel Analytics"})
    user, _ = await AccountService().create_user(f"bench-{label}-{time.time_ns()}@example.com")
    return (await UserPlugin.create(user_id=user.id, plugin=plugin, config={})).id


async def read_summary(service: AnalyticsService, reader: InstallReader, key: SummaryKey) -> None:
    """What `Query.analytics(from, to)` reads, and its `daily` (held by the snapshot)."""
    summary = await service.summary(reader, key)
    await summary.reader.daily(key.window)


async def timed_reads(service: AnalyticsService, reader: InstallReader, reads: int) -> tuple[float, float, float]:
    """The mean wall and CPU seconds of a read, and the wall seconds of the first (which rolls up
    the closed days: app/analytics/closed_days.py)."""
    today = service.today(reader.zone)
    start = today - timedelta(days=DAYS - 1)
    key = SummaryKey(reader.install_id, None, start, today, today, reader.zone_name, service.clock())
    started = time.perf_counter()
    await read_summary(service, reader, key)  # the first: rolls up, and warms up
    first = time.perf_counter() - started
    walls, cpus = [], []
    for _ in range(reads):
        started, cpu = time.perf_counter(), time.process_time()
        await read_summary(service, reader, key)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.mean(walls), statistics.mean(cpus), first


async def main(database_url: str, reads: int) -> None:
    db = Database(database_url)
    await db.open(create=True)
    await db.migrate()
    now = datetime.now(UTC)
    service = AnalyticsService(clock=lambda: now)
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    try:
        with db.bound():
            installs = {}
            for size in (1_000, 1_000_000):
                install_id = await new_install(str(size))
                started = time.perf_counter()
                await populate(install_id, size, now, seed=size)
                print(f"{size:>9,} messages: aggregates written in {time.perf_counter() - started:.1f} s")
                installs[size] = install_id
            for zone in ZONES:
                for size, install_id in installs.items():
                    reader = InstallReader(install_id, None, None, zone, DAYS)
                    results[(zone, size)] = await timed_reads(service, reader, reads)
            rows = (
                await AnalyticsBucket.filter(install_id=installs[1_000_000]).count(),
                await AnalyticsUserDay.filter(install_id=installs[1_000_000]).count(),
            )
    finally:
        await db.close()
    print(f"at 1M: {rows[0]} bucket rows, {rows[1]} user-day rows")
    for zone in ZONES:
        (small, small_cpu, small_first), (large, large_cpu, large_first) = (
            results[(zone, 1_000)],
            results[(zone, 1_000_000)],
        )
        print(
            f"{zone}: read at 1k messages {small * 1000:.1f} ms (CPU {small_cpu * 1000:.1f} ms); "
            f"at 1M {large * 1000:.1f} ms (CPU {large_cpu * 1000:.1f} ms); the first read, which rolls up "
            f"the closed days: {small_first * 1000:.1f} ms at 1k, {large_first * 1000:.1f} ms at 1M"
        )
        report(f"analytics read, 30 days in {zone}, 1M / 1k messages (wall)", large / small, "≤ 1.5")
        report(f"analytics read, 30 days in {zone}, 1M / 1k messages (CPU)", large_cpu / small_cpu, "≤ 1.5")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    url = args.database_url or f"sqlite://{tempfile.mkdtemp()}/analytics_bench.sqlite3"
    asyncio.run(main(url, args.reads))
