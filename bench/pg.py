"""PostgreSQL scratch databases for benchmarks: made for one measurement, dropped after it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def scratch_database(url: str = DEFAULT_SERVER, keep: bool = False) -> AsyncIterator[str]:
    """A new, empty database on `url`'s server; yields its URL and drops it after (unless `keep`)."""
    name = f"plugboard_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = dsn(with_database(url, "postgres"))
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(url, name)
    finally:
        if not keep:
            conn = await asyncpg.connect(admin, timeout=5)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
