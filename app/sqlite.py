"""tortoise's SQLite client, made safe for several processes on one database file.

tortoise begins a transaction with a plain (deferred) `BEGIN`: the transaction reads first and
asks for the write lock at its first write. When another process wrote in between, SQLite cannot
wait for the lock without breaking isolation and fails at once with "database is locked", whatever
the busy timeout. Here every transaction begins with `BEGIN IMMEDIATE`: it takes the write lock up
front, waiting for it (the busy timeout) while another process holds it, so it cannot fail later on
the upgrade. Readers are never blocked: the journal is a write-ahead log (WAL).

Used as the tortoise engine `app.sqlite` (see app/db.py). `GroupCommit` gives a busy writer (the
inbox's) a connection and a thread of its own beside it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from tortoise.backends.base.client import NestedTransactionContext, TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.connection import get_connections
from tortoise.exceptions import OperationalError

T = TypeVar("T")


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


class GroupCommit(Generic[T]):
    """Group commit on a thread of its own, with a connection of its own to tortoise's SQLite file.

    Each time the thread is free it takes every item queued (up to `max_group`), writes them with
    `write(connection, items)` in one go, and reports `done(items, error)` on the event loop. It
    starts on the next group as soon as one is written, without waiting for the event loop; groups
    are written in the order their items were queued. It never waits for tortoise's connection lock
    nor holds it: the two connections share the file as two processes would (BEGIN IMMEDIATE, the
    busy timeout). The connection is opened on first use with tortoise's pragmas.
    """

    def __init__(
        self,
        filename: str,
        pragmas: dict[str, Any],
        write: Callable[[sqlite3.Connection, list[T]], None],
        done: Callable[[list[T], Exception | None], None],
        max_group: int,
    ) -> None:
        self.filename = filename
        self.pragmas = dict(pragmas)
        self._write = write
        self._done = done
        self._max_group = max_group
        self._loop = asyncio.get_running_loop()
        self._changed = threading.Condition()
        self._queued: list[T] = []
        self._writing: list[T] = []
        self._jobs: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="sqlite-group-commit", daemon=True)
        self._thread.start()

    @staticmethod
    def file_of(client: object) -> str | None:
        """The file of tortoise's SQLite client; None for another database, or an in-memory one
        (which a second connection would not see)."""
        if not isinstance(client, SqliteClient):
            return None
        if client.filename in ("", ":memory:") or "mode=memory" in client.filename:
            return None
        return client.filename

    def put(self, item: T) -> None:
        if not self._thread.is_alive():  # stopped, or died: nobody would ever write it
            raise RuntimeError("the group commit's thread is not running")
        with self._changed:
            self._queued.append(item)
            self._changed.notify()

    async def run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """`work(connection)` on the thread, before its next group."""
        future: asyncio.Future[Any] = self._loop.create_future()
        with self._changed:
            self._jobs.append((work, future))
            self._changed.notify()
        return await future

    def stop(self) -> list[T]:
        """Stops once the group being written is; returns the items not known to be written."""
        with self._changed:
            self._stopping = True
            left = self._writing + self._queued
            self._queued = []
            self._changed.notify()
        return left

    def _work(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                with self._changed:
                    while not (self._queued or self._jobs or self._stopping):
                        self._changed.wait()
                    if self._stopping:
                        for _, future in self._jobs:
                            self._post(_resolve, future, None, RuntimeError("stopped"))
                        return
                    jobs, self._jobs = self._jobs, []
                    self._writing = self._queued[: self._max_group]
                    del self._queued[: self._max_group]
                for work, future in jobs:
                    try:
                        connection = connection or self._connect()
                        self._post(_resolve, future, work(connection), None)
                    except Exception as exc:
                        self._post(_resolve, future, None, exc)
                if self._writing:
                    error: Exception | None = None
                    try:
                        connection = connection or self._connect()
                        self._write(connection, self._writing)
                    except Exception as exc:
                        error = exc
                    self._post(self._done, self._writing, error)
                    with self._changed:
                        self._writing = []
        finally:
            if connection is not None:
                connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.filename, isolation_level=None, check_same_thread=False)
        try:
            for pragma, value in self.pragmas.items():  # busy_timeout first: app/db.py puts it there
                connection.execute(f"PRAGMA {pragma}={value}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop is closed: nobody is left to tell
            pass


def _resolve(future: asyncio.Future[Any], result: Any, error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def insert_all(connection: sqlite3.Connection, statement: Callable[[int], str], rows: Sequence[Sequence[object]]) -> None:
    """`rows` in one transaction that takes the write lock up front (all or none), by multi-row
    INSERTs: `statement(n)` inserts n rows, as many per statement as the parameter limit allows.
    Not executemany: the driver lets go of the GIL and takes it back around every statement it
    steps, and on a thread beside a busy event loop each time back costs a wait."""
    per_statement = max(1, connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(1, len(rows[0])))
    connection.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            connection.execute(statement(len(chunk)), [value for row in chunk for value in row])
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
