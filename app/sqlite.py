"""tortoise's SQLite client, made safe for several processes on one database file.

tortoise begins a transaction with a plain (deferred) `BEGIN`: the transaction reads first and
asks for the write lock at its first write. When another process wrote in between, SQLite cannot
wait for the lock without breaking isolation and fails at once with "database is locked", whatever
the busy timeout. Here every transaction begins with `BEGIN IMMEDIATE`: it takes the write lock up
front, waiting for it (the busy timeout) while another process holds it, so it cannot fail later on
the upgrade. Readers are never blocked: the journal is a write-ahead log (WAL).

Used as the tortoise engine `app.sqlite` (see app/db.py).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tortoise.backends.base.client import NestedTransactionContext, TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.connection import get_connections
from tortoise.exceptions import OperationalError


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


class ImmediateSqliteClient(SqliteClient):
    """Every transaction takes the write lock when it begins."""

    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)

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
