"""PostgreSQL scratch databases for benchmarks: made for one measurement, dropped after it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgres", "postgresql", "asyncpg")


def dsn(url: str) -> str:
    """`url` as asyncpg takes it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def reachable(url: str = DEFAULT_SERVER) -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = await asyncpg.connect(dsn(with_database(url, "postgres")), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def create_scratch_database(url: str = DEFAULT_SERVER) -> str:
    """A new, empty database on `url`'s server; its URL."""
    name = f"plugboard_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn(with_database(url, "postgres")), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(url, name)


async def drop_scratch_database(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(dsn(with_database(database_url, "postgres")), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(url: str = DEFAULT_SERVER, keep: bool = False) -> AsyncIterator[str]:
    """A new, empty database on `url`'s server; yields its URL and drops it after (unless `keep`)."""
    database_url = await create_scratch_database(url)
    try:
        yield database_url
    finally:
        if not keep:
            await drop_scratch_database(database_url)


@contextlib.contextmanager
def scratch_database_for(url: str = DEFAULT_SERVER) -> Iterator[str]:
    """`scratch_database` for code outside an event loop (a benchmark that runs several)."""
    database_url = asyncio.run(create_scratch_database(url))
    try:
        yield database_url
    finally:
        asyncio.run(drop_scratch_database(database_url))
