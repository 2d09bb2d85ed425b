"""Database set-up: one Tortoise context per app instance, migrations from `migrations/`."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import OperationalError
from tortoise.context import TortoiseContext, _current_context
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor

APP_LABEL = "plugboard"
MODEL_MODULES = [
    "app.accounts.models",
    "app.analytics.models",
    "app.audit.models",
    "app.gateways.models",
    "app.plugins.models",
]
MIGRATIONS_MODULE = "migrations"


def connection_name(database_url: str) -> str:
    """Named after the dialect: tortoise caches each model's SQL per connection name, process-wide,
    so a SQLite and a PostgreSQL connection of one name would share (and break) that cache."""
    scheme = database_url.split(":", 1)[0].split("+", 1)[0]
    return {"postgresql": "postgres", "asyncpg": "postgres", "psycopg": "postgres"}.get(scheme, scheme)


# How long a SQLite transaction waits for another process's write lock before it fails
# (`?busy_timeout=` in DATABASE_URL overrides it, in milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def connection_config(database_url: str) -> str | dict[str, Any]:
    """PostgreSQL as the URL says. SQLite through app/sqlite.py, whose transactions take the write
    lock up front, with a write-ahead log and a busy timeout so that several processes share a file."""
    if connection_name(database_url) != "sqlite":
        return database_url
    expanded = expand_db_url(database_url)
    credentials = {"busy_timeout": SQLITE_BUSY_TIMEOUT_MS, **expanded["credentials"]}  # set before any other pragma
    credentials["journal_mode"] = "WAL"
    return {"engine": "app.sqlite", "credentials": credentials}


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection = connection_name(database_url)
    return {
        "connections": {connection: connection_config(database_url)},
        "apps": {
            APP_LABEL: {
                "models": list(MODEL_MODULES),
                "migrations": MIGRATIONS_MODULE,
                "default_connection": connection,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def lock_id(key: str) -> int:
    """A signed 64-bit number for `key`, as PostgreSQL's advisory locks take."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def serialize(connection: BaseDBAsyncClient, key: str) -> None:
    """Makes the transactions that name `key` run one at a time, across processes, until the current
    one ends. Call it first in an `in_transaction()` block, with the connection it gives.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: every transaction holds the database's
    write lock from its start (app/sqlite.py), which already serializes them.
    """
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query(f"SELECT pg_advisory_xact_lock({lock_id(key)})")


def _ensure_sqlite_dir(database_url: str) -> None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Owns the Tortoise context of one app; `bound()` makes it current for ORM calls."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.config = tortoise_config(database_url)
        self.context = TortoiseContext()

    async def open(self, create: bool = False) -> None:
        """Connects; with `create`, makes the database first when it does not exist."""
        _ensure_sqlite_dir(self.url)
        if create:
            try:
                with self.bound():
                    await self.context.init(config=self.config, _create_db=True)
                return
            except OperationalError as exc:
                if "already exists" not in str(exc):
                    raise
                await self.close()
                self.context = TortoiseContext()
        with self.bound():
            await self.context.init(config=self.config)

    async def close(self) -> None:
        with self.bound():
            await self.context.close_connections()

    @contextlib.contextmanager
    def bound(self) -> Iterator[TortoiseContext]:
        # Not `with self.context:`: that keeps one reset token on the shared context object,
        # which concurrent requests overwrite. Each binding here keeps its own token.
        token = _current_context.set(self.context)
        try:
            yield self.context
        finally:
            _current_context.reset(token)

    async def migrate(self) -> None:
        """Applies every pending migration."""
        with self.bound():
            executor = MigrationExecutor(self.context.db(), self.config["apps"])
            await executor.migrate()

    async def pending_model_changes(self) -> list[str]:
        """Names of the migrations `makemigrations` would write now (empty when in sync)."""
        with self.bound():
            detector = MigrationAutodetector(self.context.apps, self.config["apps"])
            return [writer.name for writer in await detector.changes()]

    async def make_migrations(self, name: str | None = None) -> list[str]:
        """Writes migrations for model changes; returns their file paths."""
        with self.bound():
            detector = MigrationAutodetector(self.context.apps, self.config["apps"])
            paths = []
            for writer in await detector.changes():
                if name:
                    number = writer.name.split("_", 1)[0]
                    writer.name = f"{number}_{name}"
                paths.append(str(writer.write()))
            return paths

    async def ping(self) -> bool:
        try:
            with self.bound():
                await self.context.db().execute_query("SELECT 1")
        except Exception:
            return False
        return True
