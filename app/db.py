"""Database set-up: one Tortoise context per app instance, migrations from `migrations/`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sqlite3
from collections.abc import Iterator
from contextvars import Token
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext, _current_context
from tortoise.exceptions import BaseORMException
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget
from tortoise.migrations.recorder import MigrationRecorder
from tortoise.transactions import in_transaction

from app.sql import is_postgres

APP_LABEL = "plugboard"
MODEL_MODULES = [
    "app.accounts.models",
    "app.analytics.models",
    "app.analytics.posting_models",
    "app.audit.models",
    "app.gateways.models",
    "app.plugins.models",
]
MIGRATIONS_MODULE = "migrations"
MIGRATE_LOCK = "plugboard:migrate"  # `serialize` key: one process migrates at a time


class MissingDatabase(Exception):
    """The database DATABASE_URL names does not exist (a PostgreSQL database, a SQLite file's
    directory), and nobody asked to create it. The text says what is missing and how to make it."""


class MigrationFailed(Exception):
    """A migration failed on a database that answers: the text names the migration and the cause.
    Nothing of the run is left applied (all pending migrations go in one transaction)."""


CREATE_HINT = "or run `python -m app migrate --create-database`"


def connection_name(database_url: str) -> str:
    """Named after the dialect: tortoise caches each model's SQL per connection name, process-wide,
    so a SQLite and a PostgreSQL connection of one name would share (and break) that cache."""
    scheme = database_url.split(":", 1)[0].split("+", 1)[0]
    return {"postgresql": "postgres", "asyncpg": "postgres", "psycopg": "postgres"}.get(scheme, scheme)


# How long a SQLite transaction waits for another process's write lock before it fails
# (`?busy_timeout=` in DATABASE_URL overrides it, in milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back, which asyncpg otherwise makes a round trip of
    its own after every statement outside a transaction (`pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`). We leave no session state on pooled connections to reset: advisory
    locks are transaction-scoped (`serialize`), and nothing LISTENs, SETs or keeps a cursor. An
    open transaction is still rolled back: asyncpg does that before calling this."""


def connection_config(database_url: str) -> str | dict[str, Any]:
    """PostgreSQL as the URL says, without the pool's reset round trip (`keep_session`). SQLite
    through app/sqlite.py, whose transactions take the write lock up front, with a write-ahead log
    and a busy timeout so that several processes share a file."""
    if connection_name(database_url) != "sqlite":
        expanded = expand_db_url(database_url)
        if expanded["engine"] != "tortoise.backends.asyncpg":
            return database_url
        # app/postgres.py: a transaction whose connection dies never leaves it in the task's context.
        return {"engine": "app.postgres", "credentials": {**expanded["credentials"], "reset": keep_session}}
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
    if is_postgres(connection):
        await connection.execute_query(f"SELECT pg_advisory_xact_lock({lock_id(key)})")


def _sqlite_path(database_url: str) -> str | None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        return database_url.removeprefix("sqlite://").split("?", 1)[0]
    return None


def _prepare_sqlite_file(database_url: str, create: bool) -> None:
    """Checks that the file's directory exists (made only with `create`), and that the file is a
    SQLite database (or new): tortoise would otherwise keep its connection lock after failing to
    open it, and hang on the next query."""
    path = _sqlite_path(database_url)
    if path is None:
        return
    directory = Path(path).parent
    if not directory.is_dir():
        if not create:
            raise MissingDatabase(f"the directory {directory.resolve()} does not exist (make it first, {CREATE_HINT})")
        directory.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    finally:
        connection.close()


def failure_cause(exc: BaseException, database_url: str) -> str | None:
    """What a person needs to read about a database failure, in a few words: a refused or unknown
    address, a rejected login, a missing database, a file that is not a database. None when the
    error is not about reaching or opening the database (a bug, shown with its traceback)."""
    try:
        parts = urlsplit(database_url)
        host = parts.hostname or "localhost"
        address = f"{host}:{parts.port or 5432}"
    except ValueError:
        host = address = "the address given"
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MissingDatabase):
            return str(error)
        if isinstance(error, ConnectionRefusedError):
            return f"connection refused at {address} (is PostgreSQL running there?)"
        if isinstance(error, socket.gaierror):
            return f"the host name {host} is not known ({error.strerror or error})"
        if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
            return f"no answer from {address} in time"
        if isinstance(error, asyncpg.PostgresError):
            return _first_line(error)
        if isinstance(error, asyncpg.InterfaceError):
            return _first_line(error)
        if isinstance(error, sqlite3.Error):
            path = _sqlite_path(database_url)
            return f"{_first_line(error)} ({path})" if path else _first_line(error)
        if isinstance(error, OSError):
            where = f" ({error.filename})" if error.filename else ""
            return f"{error.strerror or _first_line(error)}{where}"
        error = error.__cause__ or error.__context__
    if isinstance(exc, BaseORMException) and "connect" in str(exc).lower():
        return _first_line(exc)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` is about reaching the database (refused, dropped, shut down, missing), not
    about what a statement did: a migration that fails on the latter is a migration error."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError, asyncpg.InterfaceError, MissingDatabase)):
            return True
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state.startswith(("08", "28", "3D", "53", "57")):
            return True
        if isinstance(error, sqlite3.OperationalError) and any(
            word in str(error).lower() for word in ("locked", "busy", "unable to open", "disk i/o")
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def _missing_postgres_database(exc: BaseException) -> bool:
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, asyncpg.InvalidCatalogNameError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _postgres_credentials(database_url: str) -> dict[str, Any]:
    credentials = expand_db_url(database_url)["credentials"]
    return {
        key: credentials[key] for key in ("host", "port", "user", "password", "ssl") if credentials.get(key) is not None
    }


def _createdb_command(database_url: str) -> str:
    credentials = _postgres_credentials(database_url)
    name = expand_db_url(database_url)["credentials"]["database"]
    options = [f"-h {credentials.get('host', 'localhost')}", f"-p {credentials.get('port', 5432)}"]
    if "user" in credentials:
        options.append(f"-U {credentials['user']}")
    return f"createdb {' '.join(options)} {name}"


async def create_postgres_database(database_url: str) -> None:
    """Creates the database `database_url` names, from the server's maintenance database. One
    that another process created first is fine: both go on with it."""
    credentials = _postgres_credentials(database_url)
    name = expand_db_url(database_url)["credentials"]["database"]
    try:
        connection = await asyncpg.connect(database="postgres", timeout=10, **credentials)
    except asyncpg.InvalidCatalogNameError:
        connection = await asyncpg.connect(database="template1", timeout=10, **credentials)
    try:
        quoted = name.replace('"', '""')
        await connection.execute(f'CREATE DATABASE "{quoted}"')
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        pass  # made by another process at the same moment
    finally:
        await connection.close()


class Database:
    """Owns the Tortoise context of one app; `bound()` makes it current for ORM calls."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.config = tortoise_config(database_url)
        self.context = TortoiseContext()

    async def open(self, create: bool = False) -> None:
        """Connects, and checks that the database answers. A database that does not exist (a
        PostgreSQL database, a SQLite file's directory) is `MissingDatabase`, unless `create`: then
        it is made. A new SQLite file in an existing directory is always made (an empty database)."""
        _prepare_sqlite_file(self.url, create)
        with self.bound():
            await self.context.init(config=self.config)
            try:
                await self.context.db().execute_query("SELECT 1")
                return
            except Exception as exc:
                await self.context.close_connections()
                if not _missing_postgres_database(exc):
                    raise
                if not create:
                    name = expand_db_url(self.url)["credentials"]["database"]
                    raise MissingDatabase(
                        f'the database "{name}" does not exist (create it: {_createdb_command(self.url)}, {CREATE_HINT})'
                    ) from exc
        await create_postgres_database(self.url)
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

    def bind(self) -> Token[TortoiseContext | None]:
        """What `bound()` does on entry, for a hot path: pass the token to `unbind` in a finally."""
        return _current_context.set(self.context)

    @staticmethod
    def unbind(token: Token[TortoiseContext | None]) -> None:
        _current_context.reset(token)

    async def migrate(self, up_to: str | None = None) -> list[str]:
        """Applies every pending migration (or those up to `up_to`, a migration's name, for tests
        of a migration on a database filled before it); returns the names of those it applied, in order.

        One process at a time, across processes: all of it runs in one transaction that first takes
        `MIGRATE_LOCK` (PostgreSQL: an advisory lock; SQLite: the write lock every transaction takes
        when it begins). A process that waited finds nothing pending. A migration that fails is
        `MigrationFailed`, and leaves nothing of this run applied; a lost connection stays what it is.
        """
        applied: list[str] = []
        current: list[str] = []

        def progress(event: str, app_label: str, name: str) -> None:
            if event == "apply_start":
                current[:] = [name]
            if event == "apply_done":
                applied.append(name)

        with self.bound():
            try:
                async with in_transaction(connection_name(self.url)) as connection:
                    await serialize(connection, MIGRATE_LOCK)
                    executor = MigrationExecutor(connection, self.config["apps"])
                    # The table of applied migrations first: tortoise reads it before it makes it,
                    # and on PostgreSQL that failed read would abort the transaction.
                    await executor.recorder.ensure_schema(executor._schema_editor(atomic=False))
                    targets = None if up_to is None else [MigrationTarget(app_label=APP_LABEL, name=up_to)]
                    await executor.migrate(targets, progress=progress)
            except Exception as exc:
                if _is_connection_failure(exc):
                    raise
                where = f"migration {current[0]}" if current else "preparing the migrations"
                raise MigrationFailed(
                    f"{where} failed, so none was applied: {_first_line(exc)} "
                    "(a bug or a database changed by hand; --debug shows the traceback)"
                ) from exc
        return applied

    async def applied_migrations(self) -> list[str]:
        """Names of the migrations this database has, in the order of their names."""
        with self.bound():
            keys = await MigrationRecorder(self.context.db()).applied_migrations()
        return sorted(key.name for key in keys if key.app_label == APP_LABEL)

    async def pending_model_changes(self) -> list[str]:
        """Names of the migrations `makemigrations` would write now (empty when in sync)."""
        with self.bound():
            assert self.context.apps is not None  # set once the database is open
            detector = MigrationAutodetector(self.context.apps, self.config["apps"])
            return [writer.name for writer in await detector.changes()]

    async def make_migrations(self, name: str | None = None) -> list[str]:
        """Writes migrations for model changes; returns their file paths."""
        with self.bound():
            assert self.context.apps is not None  # set once the database is open
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
