"""Two server processes on one PostgreSQL and one Redis: a webhook taken by one reaches a
subscriber of the other, and so does one processed by a separate worker. How fast is measured by
bench/fanout.py (`--two-servers`, `--separate-worker`), not here."""

from __future__ import annotations

import httpx
import pytest

from app.platform import INBOX_CHANNEL
from tests.support.eventually import eventually
from tests.support.live import LiveApp
from tests.support.processes import processes
from tests.support.redis_server import shared_redis_url
from tests.support.runtime import SECRET_HEADER, connect_bot, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import message_update

LIVE = "subscription { analyticsUpdated { totalMessages } }"
UPDATES = 5


@pytest.fixture
async def redis_url() -> str:
    return await shared_redis_url()


@pytest.fixture
async def owner_and_bot(make_app, telegram, backend):
    if backend != "postgres":
        pytest.skip("scale-out runs on PostgreSQL; SQLite is the one-process embedded setup")
    observer = await make_app(inbox_concurrency=0)
    owner = await observer.create_user("scale@example.com", "pro")
    bot = await connect_bot(observer, owner, telegram)
    await install(observer, owner, "analytics")
    return owner, bot


async def each_update_reaches(web_url: str, live, bot) -> None:
    """Posts updates one at a time; each must show in the subscriber's count before the next."""
    async with httpx.AsyncClient(base_url=web_url, timeout=30) as client:
        for n in range(1, UPDATES + 1):
            response = await client.post(
                bot.webhook_path, json=message_update(n, chat_id=-1), headers={SECRET_HEADER: bot.secret}
            )
            assert response.status_code == 200
            await live.until(lambda d, n=n: d["analyticsUpdated"]["totalMessages"] == n)


async def test_a_webhook_on_one_server_reaches_a_subscriber_on_another(settings, owner_and_bot, redis_url):
    owner, bot = owner_and_bot
    async with processes(settings) as running:
        first = await running.server(BROADCAST_URL=redis_url)
        second = await running.server(BROADCAST_URL=redis_url, INBOX_CONCURRENCY="0")
        async with subscribe(second.url, LIVE, token=owner.token) as live:
            assert (await live.next())["analyticsUpdated"]["totalMessages"] == 0
            await each_update_reaches(first.url, live, bot)


async def test_a_separate_worker_pushes_to_a_subscriber_of_an_ingest_only_server(settings, owner_and_bot, redis_url):
    owner, bot = owner_and_bot
    async with processes(settings) as running:
        web = await running.server(BROADCAST_URL=redis_url, INBOX_CONCURRENCY="0")
        await running.worker(BROADCAST_URL=redis_url)
        async with subscribe(web.url, LIVE, token=owner.token) as live:
            await live.next()
            await each_update_reaches(web.url, live, bot)


def listening(app: LiveApp, channel: str) -> bool:
    """Whether the app's pub/sub is connected to Redis with `channel` subscribed."""
    broadcast = app.platform.live.broadcast
    return broadcast._backend.connected.is_set() and bool(broadcast._subscribers.get(channel))  # type: ignore[attr-defined]


async def test_a_worker_claims_events_another_process_stored_without_waiting_for_its_poll(
    make_app, owner_and_bot, redis_url
):
    """The ingest process says "events stored" over Redis; the worker, polling only every 60 s,
    claims them at once."""
    owner, bot = owner_and_bot
    ingest = await make_app(inbox_concurrency=0, broadcast_url=redis_url)
    worker = await make_app(inbox_poll_seconds=60, broadcast_url=redis_url)
    await eventually(lambda: listening(worker, INBOX_CHANNEL), "the worker listening for stored events")
    for n in range(1, 4):
        response = await ingest.http.post(
            bot.webhook_path, json=message_update(n, chat_id=-7), headers={SECRET_HEADER: bot.secret}
        )
        assert response.status_code == 200
        # well within the poll interval: only the wake-up can make it
        await wait_until_processed(worker)
    assert worker.platform.dispatcher.poll_seconds == 60
