"""Fresh test databases: a SQLite file, or a PostgreSQL database made for this run and dropped after."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from graphlib import TopologicalSorter
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.db import Database, connection_name

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_postgres_database(template: str | None = None) -> str:
    """A new PostgreSQL database, empty or a copy of `template`'s; fails under CI=true when the
    server is missing, else skips."""
    try:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=30)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    name = f"plugboard_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        copied = f' TEMPLATE "{urlsplit(template).path.lstrip("/")}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await conn.close()
    return _with_database(POSTGRES_URL, name)


async def drop_postgres_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=30)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite://{directory / f'plugboard_{uuid.uuid4().hex[:8]}.sqlite3'}"


async def new_database_url(backend: str, directory: Path) -> str:
    return await create_postgres_database() if backend == "postgres" else sqlite_url(directory)


async def drop_database(backend: str, url: str) -> None:
    if backend == "postgres":
        await drop_postgres_database(url)


async def migrated(url: str) -> None:
    db = Database(url)
    await db.open()
    try:
        await db.migrate()
    finally:
        await db.close()


# The directory this run's templates are recorded in: set once by the process that starts the run
# (pytest's own, or xdist's controller) and inherited by its workers (tests/conftest.py).
TEMPLATES_VARIABLE = "PLUGBOARD_TEST_TEMPLATES"


async def migrated_copy(backend: str, directory: Path | None = None) -> str:
    """A migrated database of the caller's own (a SQLite file in `directory`), copied from a
    template that this run migrates once per backend, by whichever test asks first: a migration
    costs a second or two of CPU, a copy a few milliseconds."""
    templates = Path(os.environ[TEMPLATES_VARIABLE])
    async with _locked(templates / f"{backend}.lock"):
        record = templates / f"{backend}.url"
        if not record.exists():
            template = await new_database_url(backend, templates)
            await migrated(template)
            record.write_text(template)
        template = record.read_text()
        if backend == "postgres":
            return await create_postgres_database(template=template)
        assert directory is not None, "a SQLite copy needs a directory"
        copy = sqlite_url(directory)
        _copy_sqlite(_sqlite_path(template), _sqlite_path(copy))
        return copy


def drop_templates(templates: Path) -> None:
    """Run by the process that made `templates`, once every worker is done with them."""
    record = templates / "postgres.url"
    if record.exists():
        asyncio.run(drop_postgres_database(record.read_text()))


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """An exclusive lock on `path` across processes, waited for off the event loop."""
    with open(path, "a") as file:
        await asyncio.to_thread(fcntl.flock, file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite://")


def _copy_sqlite(source: str, target: str) -> None:
    """SQLite's backup API: a consistent copy whatever the source's journal holds."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


async def truncate_all(db: Database) -> None:
    """Empties every table of the app (not the migration records), on either backend.

    DELETE, not TRUNCATE: on PostgreSQL a TRUNCATE makes new files for each table and its indexes,
    67 ms a test of the server's time against 1 ms for deleting the few rows a test leaves."""
    with db.bound() as ctx:
        conn = ctx.db()
        assert ctx.apps is not None
        tables = deletion_order(list(ctx.apps.get_models_iterable()))
        deletes = "".join(f'DELETE FROM "{t}";' for t in tables)
        if conn.capabilities.dialect == "postgres":
            async with in_transaction(connection_name(db.url)) as transaction:
                await transaction.execute_script(deletes)
        else:
            await conn.execute_script("PRAGMA foreign_keys=OFF;" + deletes + "PRAGMA foreign_keys=ON;")


def deletion_order(models: list[type[Model]]) -> list[str]:
    """The models' tables, each before the tables it references."""
    references = {
        model._meta.db_table: {
            cast(ForeignKeyFieldInstance, model._meta.fields_map[name]).related_model._meta.db_table
            for name in model._meta.fk_fields
        }
        - {model._meta.db_table}
        for model in models
    }
    return list(reversed(list(TopologicalSorter(references).static_order())))
