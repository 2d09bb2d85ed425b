"""Two server processes on one PostgreSQL and one Redis: a webhook taken by one reaches a
subscriber of the other, and so does one processed by a separate worker."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from app.graphql.analytics import MIN_PUSH_INTERVAL_SECONDS
from tests.support.processes import processes
from tests.support.runtime import SECRET_HEADER, connect_bot, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import message_update

REDIS_URL = "redis://127.0.0.1:6379/0"
LIVE = "subscription { analyticsUpdated { totalMessages } }"


@pytest.fixture
async def owner_and_bot(make_app, telegram, backend):
    if backend != "postgres":
        pytest.skip("scale-out runs on PostgreSQL; SQLite is the one-process embedded setup")
    observer = await make_app(inbox_concurrency=0)
    owner = await observer.create_user("scale@example.com", "pro")
    bot = await connect_bot(observer, owner, telegram)
    await install(observer, owner, "analytics")
    return owner, bot


async def push_latencies(web_url: str, live, bot, count: int) -> list[float]:
    """Seconds from each webhook's 200 to the subscriber's event showing it. The first update
    waits for the processes to be ready and is not measured; the others are spaced by more than
    the subscription's coalescing interval, so each push is measured on its own."""
    latencies = []
    async with httpx.AsyncClient(base_url=web_url, timeout=10) as client:
        for n in range(1, count + 2):
            await asyncio.sleep(MIN_PUSH_INTERVAL_SECONDS)
            response = await client.post(bot.webhook_path, json=message_update(n, chat_id=-1), headers={SECRET_HEADER: bot.secret})
            assert response.status_code == 200
            acknowledged = time.perf_counter()
            await live.until(lambda d, n=n: d["analyticsUpdated"]["totalMessages"] == n, timeout=30 if n == 1 else 10)
            if n > 1:
                latencies.append(time.perf_counter() - acknowledged)
    return latencies


def report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name}: push latency p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


async def test_a_webhook_on_one_server_reaches_a_subscriber_on_another(settings, owner_and_bot):
    owner, bot = owner_and_bot
    async with processes(settings) as running:
        first = await running.server(BROADCAST_URL=REDIS_URL)
        second = await running.server(BROADCAST_URL=REDIS_URL, INBOX_CONCURRENCY="0")
        async with subscribe(second.url, LIVE, token=owner.token) as live:
            assert (await live.next())["analyticsUpdated"]["totalMessages"] == 0
            latencies = await push_latencies(first.url, live, bot, 30)
    report("two servers", latencies)
    assert statistics.median(latencies) < 1  # "within a second of the webhook's 200"


async def test_a_separate_worker_pushes_to_a_subscriber_of_an_ingest_only_server(settings, owner_and_bot):
    owner, bot = owner_and_bot
    async with processes(settings) as running:
        web = await running.server(BROADCAST_URL=REDIS_URL, INBOX_CONCURRENCY="0")
        await running.worker(BROADCAST_URL=REDIS_URL)
        async with subscribe(web.url, LIVE, token=owner.token) as live:
            await live.next()
            latencies = await push_latencies(web.url, live, bot, 30)
    report("ingest-only server + worker", latencies)
    assert statistics.median(latencies) < 1


async def test_a_worker_claims_events_another_process_stored_without_waiting_for_its_poll(make_app, owner_and_bot):
    """The ingest process says "events stored" over Redis; the worker, polling only every 60 s,
    claims them at once."""
    owner, bot = owner_and_bot
    ingest = await make_app(inbox_concurrency=0, broadcast_url=REDIS_URL)
    worker = await make_app(inbox_poll_seconds=60, broadcast_url=REDIS_URL)
    await asyncio.sleep(1)  # the worker's first claim (an empty inbox) and its subscription
    for n in range(1, 4):
        response = await ingest.http.post(bot.webhook_path, json=message_update(n, chat_id=-7), headers={SECRET_HEADER: bot.secret})
        assert response.status_code == 200
        # well within the poll interval: only the wake-up can make it
        await wait_until_processed(worker, deadline_seconds=20)
    assert worker.platform.dispatcher.poll_seconds == 60
