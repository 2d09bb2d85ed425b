"""SQLite's client (app/sqlite.py): short reads on the event loop's thread read what has been
committed, never what a transaction has not; their connection never waits for a lock, and a read it
cannot make goes the usual way. And `insert_all`, the inbox writer's rows on a connection of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from app.db import Database
from app.sqlite import ImmediateSqliteClient, insert_all, short_read

SELECT = "SELECT id, name FROM notes WHERE id >= ? ORDER BY id"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ImmediateSqliteClient]:
    db = Database(f"sqlite://{tmp_path}/short.sqlite3")
    await db.open()
    try:
        with db.bound() as context:
            client = context.db()
            assert isinstance(client, ImmediateSqliteClient)
            await client.execute_script("CREATE TABLE notes (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            await client.execute_query("INSERT INTO notes (id, name) VALUES (1, 'one'), (2, 'two')")
            yield client
    finally:
        await db.close()


async def test_a_short_read_gives_what_a_query_gives_and_sees_what_was_just_committed(client):
    _, queried = await client.execute_query(SELECT, [1])
    assert [tuple(row) for row in await short_read(client, SELECT, [1])] == [tuple(row) for row in queried]

    await client.execute_query("INSERT INTO notes (id, name) VALUES (3, 'three')")

    assert [tuple(row) for row in await short_read(client, SELECT, [2])] == [(2, "two"), (3, "three")]


async def test_a_transactions_short_read_is_its_own_and_others_see_only_what_is_committed(client):
    async with in_transaction() as transaction:
        await transaction.execute_query("INSERT INTO notes (id, name) VALUES (3, 'three')")
        inside = await short_read(transaction, SELECT, [3])
        outside = await short_read(client, SELECT, [3])
    after = await short_read(client, SELECT, [3])

    assert [tuple(row) for row in inside] == [(3, "three")]
    assert list(outside) == []
    assert [tuple(row) for row in after] == [(3, "three")]


async def test_a_short_read_the_loops_connection_cannot_make_goes_the_usual_way(client):
    # A temporary table is its connection's own: aiosqlite's has it, the loop's reader does not.
    await client.execute_script("CREATE TEMP TABLE scratch (id INTEGER PRIMARY KEY)")
    await client.execute_query("INSERT INTO scratch (id) VALUES (7)")

    rows = await short_read(client, "SELECT id FROM scratch WHERE id >= ?", [1])

    assert [tuple(row) for row in rows] == [(7,)]


async def test_the_loops_reader_never_waits_for_a_lock(client):
    await short_read(client, SELECT, [1])
    reader = client._reader()
    assert reader is not None
    # A wait for a lock would hold the event loop: it gives up at once, and the read goes the usual way.
    assert reader.execute("PRAGMA busy_timeout").fetchone() == (0,)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO notes (id, name) VALUES (9, 'nine')")


def test_insert_all_writes_its_constants_into_every_row_of_every_statement(tmp_path: Path):
    connection = sqlite3.connect(tmp_path / "rows.sqlite3", isolation_level=None)
    try:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT, at TEXT)")
        connection.execute("INSERT INTO notes (id, name) VALUES (2, 'kept')")
        # Room for two constants and three rows a statement: seven rows take three statements.
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 + 3 * 2)
        rows = [(n, f"n{n}") for n in range(1, 8)]
        moment = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)

        insert_all(connection, "notes", ("id", "name"), rows, "ON CONFLICT DO NOTHING", {"kind": "k", "at": moment})

        stored = connection.execute("SELECT id, name, kind, at FROM notes ORDER BY id").fetchall()
        assert stored[1] == (2, "kept", None, None)  # a row already there is left as it was
        assert [row for row in stored if row[0] != 2] == [(n, f"n{n}", "k", str(moment)) for n in range(1, 8) if n != 2]
    finally:
        connection.close()
