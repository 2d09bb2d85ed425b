"""tortoise's SQLite client, made safe for several processes on one database file.

tortoise begins a transaction with a plain (deferred) `BEGIN`: the transaction reads first and
asks for the write lock at its first write. When another process wrote in between, SQLite cannot
wait for the lock without breaking isolation and fails at once with "database is locked", whatever
the busy timeout. Here every transaction begins with `BEGIN IMMEDIATE`: it takes the write lock up
front, waiting for it (the busy timeout) while another process holds it, so it cannot fail later on
the upgrade. Readers are never blocked: the journal is a write-ahead log (WAL).

Used as the tortoise engine `app.sqlite` (see app/db.py). `insert_all` writes rows on a connection of
sqlite3's own (app.batching.CommitThread's); `short_read` reads a few rows on the event loop's thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import (
    BaseDBAsyncClient,
    NestedTransactionContext,
    TransactionalDBClient,
    TransactionContext,
)
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.connection import get_connections
from tortoise.exceptions import OperationalError

from app.sql import sqlite_value, values_select_insert


class ImmediateTransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> TransactionalDBClient:
        # Unlike tortoise's, a BEGIN that fails (the lock stayed taken past the busy timeout) gives
        # the connection back: nothing is left holding this process's lock.
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(ImmediateTransactionWrapper(self))

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OperationalError(exc) from exc

    @translate_exceptions
    async def execute_script(self, query: str) -> None:
        """The script's statements one by one, inside the transaction: sqlite3's `executescript`
        would commit the transaction first (and so let go of its write lock)."""
        async with self.acquire_connection() as connection:
            self.log.debug(query)
            for statement in statements(query):
                await connection.execute(statement)


def statements(script: str) -> list[str]:
    """The complete statements of an SQL script, split where SQLite itself would (a `;` inside a
    string or a comment does not end one)."""
    found: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                found.append(current.strip())
            current = ""
    if current.strip(" \t\r\n;"):
        found.append(current.rstrip(";").strip())
    return found


class ImmediateSqliteClient(SqliteClient):
    """Every transaction takes the write lock when it begins. Short reads may skip aiosqlite's thread
    (`execute_short_read`)."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self._loop_reader: sqlite3.Connection | None = None

    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)

    async def execute_short_read(self, query: str, values: list[Any]) -> list[Any]:
        """The rows of a read whose answer is small and found through an index, read on the calling
        (event loop) thread over a read-only connection of its own.

        Through aiosqlite a read waits for this client's lock (held through every transaction) and
        then crosses to its thread and back, taking the GIL back from a busy event loop at each row
        it steps: about 0.35 ms of CPU for a user's ten installs, where the read itself takes tens
        of µs. The write-ahead log lets a second connection read what has been committed without
        waiting for writers, so this one never waits: its busy timeout is 0, and a read it cannot
        make at once (the file locked by a checkpoint or an exclusive writer, or not to be opened)
        goes the usual way, which waits and fails as every query does."""
        reader = self._reader()
        if reader is not None:
            try:
                rows = reader.execute(query, values).fetchall()
            except sqlite3.Error:
                pass
            else:
                self.log.debug("%s: %s", query, values)
                return rows
        _, found = await self.execute_query(query, values)
        return list(found)

    def _reader(self) -> sqlite3.Connection | None:
        if self._loop_reader is None and self._connection is not None and self.filename != ":memory:":
            uri = Path(self.filename).resolve().as_uri() + "?mode=ro"
            try:
                self._loop_reader = sqlite3.connect(
                    uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error:
                return None
        return self._loop_reader

    async def close(self) -> None:
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        await super().close()

    @translate_exceptions
    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        async with self.acquire_connection() as connection:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                await connection.executemany(query, values)
            except Exception:
                await connection.rollback()
                raise
            else:
                await connection.commit()


client_class = ImmediateSqliteClient


async def short_read(connection: BaseDBAsyncClient, query: str, values: list[Any]) -> Sequence[Any]:
    """The rows of a short read (see `ImmediateSqliteClient.execute_short_read`) on SQLite outside
    a transaction; anywhere else (PostgreSQL, a transaction's own connection) an ordinary query."""
    if isinstance(connection, ImmediateSqliteClient):
        return await connection.execute_short_read(query, values)
    _, rows = await connection.execute_query(query, values)
    return rows


def insert_all(
    connection: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_conflict: str,
    constants: Mapping[str, object] | None = None,
) -> None:
    """app.sql.insert_rows on a connection of sqlite3's own, in one transaction that takes the write
    lock up front (all or none): as many rows per INSERT as the parameter limit allows. Not
    executemany: the driver lets go of the GIL and takes it back around every statement it steps,
    and on a thread beside a busy event loop each time back costs a wait."""
    fixed = dict(constants or {})
    names = (*columns, *fixed)
    shared = [sqlite_value(value) for value in fixed.values()]  # sent once a statement
    per_statement = max(1, (connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(shared)) // len(columns))
    at = tuple(range(len(columns), len(names)))  # the constants' places
    connection.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = values_select_insert(table, names, at, len(chunk), on_conflict)
            connection.execute(sql, [*shared, *(sqlite_value(value) for row in chunk for value in row)])
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
