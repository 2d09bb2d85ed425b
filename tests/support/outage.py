"""Real database faults for tests: a PostgreSQL database that refuses connections, a table held
locked, a SQLite file locked by another connection; and /healthz watched while they last."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.support.databases import POSTGRES_URL
from tests.support.eventually import DEADLINE_SECONDS

# asyncpg's TLS probe (sslmode=prefer, its default) makes a future that only its connect awaits. A
# connect cancelled while its socket opens leaves that future behind, and the socket's close then
# fails it: asyncio logs it as never retrieved (asyncpg/connect_utils.py, TLSUpgradeProto). It is
# no task or future of ours. Seen once, under a loaded CI run, while a database refused connections.
ASYNCPG_ORPHANED_TLS_PROBE = "exception=ConnectionError('unexpected connection_lost() call')"


def background_failures(messages: Iterable[str]) -> list[str]:
    """The log lines saying a task or future of ours failed with nobody to see it, or a loop crashed."""
    return [m for m in messages if ("never retrieved" in m and ASYNCPG_ORPHANED_TLS_PROBE not in m) or "crashed" in m]


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def _admin() -> asyncpg.Connection:
    """A connection to the server's maintenance database, never to the database under test."""
    return await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=30)


async def refuse_connections(url: str) -> None:
    """The database refuses new connections, and every open one is cut (as a failover or restart does)."""
    name = database_name(url)
    conn = await _admin()
    try:
        await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        # Down means down: no session of it is left (the clients hear of it as their sockets close).
        for _ in range(100):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name):
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def allow_connections(url: str) -> None:
    conn = await _admin()
    try:
        await conn.execute(f'ALTER DATABASE "{database_name(url)}" WITH ALLOW_CONNECTIONS true')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def postgres_table_locked(url: str, table: str) -> AsyncIterator[None]:
    """Another session holds `table` locked: every statement on it waits, other tables answer."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=30)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def sqlite_locked(url: str) -> AsyncIterator[None]:
    """Another connection holds the SQLite file's write lock: writers wait out their busy timeout,
    then fail with "database is locked"; readers go on (WAL). The lock is taken in a thread, so the
    app in this event loop can finish what it is writing meanwhile."""
    conn = await asyncio.to_thread(
        sqlite3.connect, url.removeprefix("sqlite://"), timeout=30, isolation_level=None, check_same_thread=False
    )
    try:
        await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            await asyncio.to_thread(conn.execute, "ROLLBACK")
    finally:
        await asyncio.to_thread(conn.close)


@contextlib.asynccontextmanager
async def database_locked(url: str, table: str) -> AsyncIterator[None]:
    """Writes to `table` cannot go through: on PostgreSQL the table is locked (statements on it
    wait), on SQLite the whole file is (writes fail as locked after the busy timeout)."""
    if url.startswith("sqlite"):
        async with sqlite_locked(url):
            yield
    else:
        async with postgres_table_locked(url, table):
            yield


@dataclass
class HealthWatch:
    """Asks /healthz over and over, keeping every answer."""

    http: httpx.AsyncClient
    interval: float = 0.1
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            try:
                response = await self.http.get("/healthz", timeout=10)
                self.answers.append((response.status_code, response.json()))
            except httpx.HTTPError as exc:
                self.answers.append((0, {"error": repr(exc)}))
            await asyncio.sleep(self.interval)

    def start(self) -> HealthWatch:
        self._task = asyncio.create_task(self._watch())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> HealthWatch:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def statuses(self) -> set[int]:
        return {status for status, _ in self.answers}

    def failures(self) -> list[dict[str, Any]]:
        """The bodies of the answers that were not 200 (what /healthz said was wrong)."""
        return [body for status, body in self.answers if status != 200]


async def wait_for_health(
    http: httpx.AsyncClient, status: int, deadline_seconds: float = DEADLINE_SECONDS
) -> dict[str, Any]:
    """Waits until /healthz answers `status`; returns its body (fails after the deadline)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_seconds
    while True:
        response = await http.get("/healthz", timeout=10)
        if response.status_code == status:
            return response.json()
        assert loop.time() < end, f"/healthz still {response.status_code}: {response.text}"
        await asyncio.sleep(0.1)


async def short_busy_timeout(db: Any, milliseconds: int = 200) -> None:
    """On SQLite, a locked write fails after `milliseconds` instead of the default 5 s (no-op on
    PostgreSQL). `db` is a bound Tortoise context, as `LiveApp.db()` gives."""
    conn = db.db()
    if conn.capabilities.dialect == "sqlite":
        await conn.execute_script(f"PRAGMA busy_timeout = {milliseconds}")


@contextlib.asynccontextmanager
async def own_postgres_database() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of its own, so refusing its connections touches no other test."""
    from tests.support.databases import drop_postgres_database, migrated_copy

    url = await migrated_copy("postgres")
    try:
        yield url
    finally:
        await allow_connections(url)
        await drop_postgres_database(url)


@contextlib.asynccontextmanager
async def database_down(url: str) -> AsyncIterator[None]:
    """Nothing can be written: a PostgreSQL database refuses connections and cuts the open ones
    (give it a database of its own), a SQLite file is locked by another connection."""
    if url.startswith("sqlite"):
        async with sqlite_locked(url):
            yield
        return
    await refuse_connections(url)
    try:
        yield
    finally:
        await allow_connections(url)
