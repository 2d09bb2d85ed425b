"""An update that got a 200 is processed even when the server process dies right after."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from app.plugins.handlers.analytics import AnalyticsHandler
from tests.support.processes import Running, processes
from tests.support.runtime import SECRET_HEADER, connect_bot, install, messages_counted, wait_until_processed
from tests.support.telegram_updates import message_update


@pytest.fixture
async def start_server(settings) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    async with processes(settings) as running:
        yield running.server


async def post_updates(url: str, bot, updates: list[dict]) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(bot.webhook_path, json=u, headers={SECRET_HEADER: bot.secret}) for u in updates)
        )
    return [r.status_code for r in responses]


@pytest.mark.slow
async def test_acknowledged_updates_are_processed_after_a_crash(make_app, telegram, start_server):
    # An in-process app that only looks at the database: it processes nothing itself.
    observer = await make_app(handlers=[AnalyticsHandler()], inbox_concurrency=0)
    owner = await observer.create_user("crash@example.com", "pro")
    bot = await connect_bot(observer, owner, telegram)
    analytics = await install(observer, owner, "analytics")

    # 1. Accepted but never started: the process dies before its worker takes anything.
    ingest_only = await start_server(INBOX_CONCURRENCY="0")
    statuses = await post_updates(ingest_only.url, bot, [message_update(n, chat_id=-1) for n in range(1, 21)])
    assert statuses == [200] * 20
    ingest_only.kill()
    await ingest_only.process.wait()

    restarted = await start_server()
    await wait_until_processed(observer)
    assert await messages_counted(observer, analytics.id, -1) == 20

    # 2. Killed while processing: claimed events come back after their lease, none counted twice.
    busy = await start_server(INBOX_LEASE_SECONDS="1")
    restarted.kill()
    await restarted.process.wait()
    statuses = await post_updates(busy.url, bot, [message_update(n, chat_id=-1) for n in range(21, 61)])
    assert statuses == [200] * 40
    busy.kill()
    await busy.process.wait()

    await start_server(INBOX_LEASE_SECONDS="1")
    await wait_until_processed(observer)
    assert await messages_counted(observer, analytics.id, -1) == 60


async def test_a_worker_process_handles_what_an_ingest_only_server_accepted(make_app, telegram, start_server, settings):
    observer = await make_app(handlers=[AnalyticsHandler()], inbox_concurrency=0)
    owner = await observer.create_user("split@example.com", "pro")
    bot = await connect_bot(observer, owner, telegram)
    analytics = await install(observer, owner, "analytics")
    web = await start_server(INBOX_CONCURRENCY="0")
    assert await post_updates(web.url, bot, [message_update(n, chat_id=-3) for n in range(1, 11)]) == [200] * 10

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "worker",
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "TELEGRAM_API_URL": settings.telegram_api_url,
            "SCHEDULER_ENABLED": "false",
            "INBOX_POLL_SECONDS": "0.2",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_until_processed(observer)
        assert await messages_counted(observer, analytics.id, -3) == 10
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 15) == 0  # a clean stop on SIGTERM
