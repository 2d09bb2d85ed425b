"""A transaction whose connection fails under it leaves nothing behind in the task that ran it:
the task's next transaction is a transaction of its own, on a connection of its own, that commits."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from app.db import Database
from app.db_errors import is_unavailable
from tests.support.outage import own_postgres_database
from tests.support.proxy import tcp_proxy


@pytest.fixture
async def proxied_database():
    """A PostgreSQL database of its own, opened by the app's Database through a TCP proxy."""
    async with own_postgres_database() as url, tcp_proxy("127.0.0.1", urlsplit(url).port or 5432) as proxy:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute("CREATE TABLE marks (key text PRIMARY KEY)")
        finally:
            await conn.close()
        parts = urlsplit(url)
        db = Database(urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}")))
        await db.open()
        try:
            yield db, proxy, url
        finally:
            await proxy.thaw()
            await db.close()


async def committed_keys(url: str) -> list[str]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return [row["key"] for row in await conn.fetch("SELECT key FROM marks ORDER BY key")]
    finally:
        await conn.close()


async def store(key: str) -> None:
    async with in_transaction() as conn:
        await conn.execute_query("INSERT INTO marks (key) VALUES ($1)", [key])


@pytest.mark.slow
@pytest.mark.postgres
async def test_a_transaction_cut_off_while_it_begins_leaves_the_task_a_transaction_of_its_own(proxied_database):
    db, proxy, url = proxied_database
    with db.bound():
        await store("before")  # the pool has a connection, idle
        await proxy.freeze()  # the network stops answering: BEGIN gets no reply
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):  # a caller's deadline, as a plugin run has
                await store("lost")
        await proxy.thaw()
        # The same task goes on: its next transaction commits, on its own connection. (tortoise's
        # left the first one in the task's context: this became a savepoint inside a transaction
        # that never commits, and was lost.)
        await store("after")
    assert await committed_keys(url) == ["after", "before"]


@pytest.mark.postgres
async def test_a_transaction_whose_connection_is_cut_leaves_the_task_a_transaction_of_its_own(proxied_database):
    db, proxy, url = proxied_database
    with db.bound():
        await store("before")
        with pytest.raises(Exception) as caught:
            async with in_transaction() as conn:
                await conn.execute_query("SELECT 1")
                await proxy.cut()
                await conn.execute_query("SELECT 1")
        assert is_unavailable(caught.value)
        await proxy.restore()
        await store("after")
    assert await committed_keys(url) == ["after", "before"]
