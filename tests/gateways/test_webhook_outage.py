"""While the database is unavailable the webhook answers 503 with a small JSON body (Telegram
retries), never a 500; once it is back, the retried updates are stored, each once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from app.gateways.models import GatewayEvent
from tests.support.databases import POSTGRES_URL
from tests.support.eventually import eventually
from tests.support.live import LiveApp
from tests.support.outage import own_postgres_database, sqlite_locked
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import SECRET_HEADER, ConnectedBot, connect_bot, deliver
from tests.support.telegram_updates import message_update

UNAVAILABLE = {"error": "database unavailable, try again"}


async def _admin() -> asyncpg.Connection:
    """A connection to the maintenance database, never to the one under test."""
    return await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=5)


async def _allow_connections(name: str, allow: bool) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:  # and every open connection is cut, as a failover or a restart does
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


@pytest.fixture
async def postgres_url(backend: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test's own, so cutting it off touches no other test."""
    if backend != "postgres":
        pytest.skip("a PostgreSQL outage")
    async with own_postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def refusing_connections(url: str) -> AsyncIterator[None]:
    name = urlsplit(url).path.lstrip("/")
    await _allow_connections(name, False)
    try:
        yield
    finally:
        await _allow_connections(name, True)


async def deliver_until_acknowledged(
    live: LiveApp, bot: ConnectedBot, update: dict, deadline_seconds: float = 30
) -> None:
    """What Telegram does: sends again after a non-2xx, until one is acknowledged."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_seconds
    while True:
        response = await deliver(live, bot, update)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            return
        assert loop.time() < end, "still 503 after the database came back"
        await asyncio.sleep(0.2)


async def stored_keys(live: LiveApp) -> list[str]:
    with live.db():
        return sorted((str(key) for key in await GatewayEvent.all().values_list("key", flat=True)), key=int)


async def start(make_app, telegram, **settings) -> tuple[LiveApp, ConnectedBot]:
    # Ingest only: what is under test is the acknowledgement, not processing during the outage.
    live = await make_app(handlers=[RecordingPlugin()], inbox_concurrency=0, **settings)
    owner = await live.create_user("owner@example.com", "pro")
    return live, await connect_bot(live, owner, telegram)


async def test_postgres_refusing_connections_the_secret_lookup_answers_503(postgres_url, make_app, telegram, caplog):
    live, bot = await start(make_app, telegram, database_url=postgres_url, gateway_cache_seconds=0)
    assert (await deliver(live, bot, message_update(1))).status_code == 200
    updates = [message_update(n, chat_id=-n) for n in range(2, 42)]

    with caplog.at_level(logging.WARNING, logger="app.gateways"):
        async with refusing_connections(postgres_url):
            responses = await asyncio.gather(*(deliver(live, bot, u) for u in updates))
            assert [r.status_code for r in responses] == [503] * len(updates)
            assert all(r.json() == UNAVAILABLE for r in responses)
            # An id that cannot be ours is refused without asking the database.
            assert live.http is not None
            odd = await live.http.post(
                "/webhooks/telegram/" + "0" * 40, json=updates[0], headers={SECRET_HEADER: bot.secret}
            )
            assert odd.status_code == 401
    assert "the gateway lookup failed" in caplog.text

    for update in updates:
        await deliver_until_acknowledged(live, bot, update)
    assert await stored_keys(live) == [str(n) for n in range(1, 42)]


async def test_postgres_refusing_connections_the_inbox_write_answers_503(postgres_url, make_app, telegram, caplog):
    live, bot = await start(make_app, telegram, database_url=postgres_url, gateway_cache_seconds=300)
    assert (await deliver(live, bot, message_update(1))).status_code == 200  # the secret is cached now
    updates = [message_update(n, chat_id=-n) for n in range(2, 42)]

    with caplog.at_level(logging.WARNING, logger="app.gateways"):
        async with refusing_connections(postgres_url):
            responses = await asyncio.gather(*(deliver(live, bot, u) for u in updates))
            assert [r.status_code for r in responses] == [503] * len(updates)
            assert all(r.json() == UNAVAILABLE for r in responses)
    assert "the inbox write failed" in caplog.text
    assert "database unavailable" in caplog.text

    for update in [*updates, *updates]:  # and Telegram may send some twice
        await deliver_until_acknowledged(live, bot, update)
    assert await stored_keys(live) == [str(n) for n in range(1, 42)]


async def test_sqlite_locked_by_another_process_answers_503(make_app, telegram, backend, database_url):
    if backend != "sqlite":
        pytest.skip("a SQLite file lock")
    # A locked write fails after 0.2 s, not the default 30 s: on every connection of the app (the
    # inbox writes on one of its own), as DATABASE_URL's busy_timeout sets it.
    live, bot = await start(make_app, telegram, database_url=f"{database_url}?busy_timeout=200")
    assert (await deliver(live, bot, message_update(1))).status_code == 200
    updates = [message_update(n, chat_id=-n) for n in range(2, 22)]

    async with sqlite_locked(database_url):
        responses = await asyncio.gather(*(deliver(live, bot, u) for u in updates))
        assert [r.status_code for r in responses] == [503] * len(updates)
        assert all(r.json() == UNAVAILABLE for r in responses)

    for update in updates:
        await deliver_until_acknowledged(live, bot, update)
    assert await stored_keys(live) == [str(n) for n in range(1, 22)]


async def test_no_webhook_answer_is_a_500_while_postgres_goes_away_and_comes_back(postgres_url, make_app, telegram):
    """Updates keep arriving before, during and after the outage: every answer is 200 or 503."""
    live, bot = await start(make_app, telegram, database_url=postgres_url, gateway_cache_seconds=0)
    statuses: list[int] = []
    stop = asyncio.Event()

    async def telegram_sending(first: int) -> None:
        n = first
        while not stop.is_set():
            try:
                response = await deliver(live, bot, message_update(n, chat_id=-(n % 7)))
            except httpx.HTTPError as exc:  # a reset connection would be a failure too
                raise AssertionError(f"connection failed: {exc!r}") from exc
            statuses.append(response.status_code)
            n += 1
            await asyncio.sleep(0.01)

    def answered_since(start: int, status: int, count: int = 20) -> bool:
        """`count` answers of `status` since the `start`-th answer (or an early sender's failure)."""
        return statuses[start:].count(status) >= count or any(task.done() for task in senders)

    senders = [asyncio.create_task(telegram_sending(k * 100_000)) for k in range(1, 5)]
    try:
        await eventually(lambda: answered_since(0, 200), "updates acknowledged before the outage")
        async with refusing_connections(postgres_url):
            cut = len(statuses)
            await eventually(lambda: answered_since(cut, 503), "503s during the outage")
        back = len(statuses)
        await eventually(lambda: answered_since(back, 200), "updates acknowledged after the outage")
    finally:
        stop.set()
        await asyncio.gather(*senders)
    assert set(statuses) == {200, 503}
    assert statuses[-1] == 200  # it came back by itself


async def test_the_analytics_csv_answers_503_while_postgres_refuses_connections(postgres_url, make_app):
    live = await make_app(database_url=postgres_url)
    owner = await live.create_user("csv@example.com", "pro")
    async with refusing_connections(postgres_url):
        response = await live.http.get("/analytics.csv", headers=owner.auth)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert (await live.http.get("/analytics.csv", headers=owner.auth)).status_code == 404  # back: not installed
