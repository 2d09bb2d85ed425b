"""The multi-row INSERTs of the write paths (`app.sql.insert_rows`), on both databases: what a
column that every row shares travels as is not what the rows hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import Database
from app.sql import insert_rows, is_postgres

COLUMNS = ("id", "owner", "n", "flag", "note", "data", "at")
TYPES = ("text", "text", "bigint", "boolean", "text", "jsonb", "timestamptz")
SHARED = ("owner", "flag", "note", "data", "at")
UPSERT = "ON CONFLICT (id) DO UPDATE SET n = probe.n + excluded.n, note = excluded.note, at = excluded.at"
AT = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[BaseDBAsyncClient]:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            connection = db.context.db()
        data, at = ("jsonb", "timestamptz") if is_postgres(connection) else ("text", "text")
        await connection.execute_script("DROP TABLE IF EXISTS probe")
        await connection.execute_script(
            f"CREATE TABLE probe (id text PRIMARY KEY, owner text NOT NULL, n bigint NOT NULL, flag boolean, "
            f"note text, data {data}, at {at})"
        )
        yield connection
        await connection.execute_script("DROP TABLE probe")
    finally:
        await db.close()


async def insert(conn: BaseDBAsyncClient, rows: list[list[Any]], **options: Any) -> list[dict[str, Any]]:
    return await insert_rows(
        conn, "probe", COLUMNS, rows, UPSERT, jsonb={"data"}, returning="id", types=TYPES, **options
    )


async def stored(conn: BaseDBAsyncClient) -> list[tuple[Any, ...]]:
    rows = await conn.execute_query_dict("SELECT * FROM probe ORDER BY id")
    return [
        (row["id"], row["owner"], row["n"], bool(row["flag"]) if row["flag"] is not None else None, row["note"])
        for row in rows
    ]


def row(n: int, owner: str = "a", flag: bool | None = True, note: str | None = None) -> list[Any]:
    return [f"r{n}", owner, n, flag, note, '{"k": 1}', AT]


async def test_rows_that_share_columns_are_stored_as_given(conn: BaseDBAsyncClient) -> None:
    rows = [row(1), row(2), row(3)]

    inserted = await insert(conn, rows, uniform=SHARED)

    assert sorted(r["id"] for r in inserted) == ["r1", "r2", "r3"]
    assert await stored(conn) == [("r1", "a", 1, True, None), ("r2", "a", 2, True, None), ("r3", "a", 3, True, None)]


async def test_columns_that_differ_between_rows_are_stored_row_by_row(conn: BaseDBAsyncClient) -> None:
    rows = [row(1, owner="a", flag=None), row(2, owner="b", flag=False, note="x"), row(3, owner="a", flag=True)]

    await insert(conn, rows, uniform=SHARED)

    assert await stored(conn) == [("r1", "a", 1, None, None), ("r2", "b", 2, False, "x"), ("r3", "a", 3, True, None)]


async def test_a_shared_column_is_what_the_conflict_update_sees(conn: BaseDBAsyncClient) -> None:
    await insert(conn, [row(1), row(2)], uniform=SHARED)

    await insert(conn, [row(1, note="again"), row(2, note="again")], uniform=SHARED)

    assert await stored(conn) == [("r1", "a", 2, True, "again"), ("r2", "a", 4, True, "again")]


async def test_sharing_changes_nothing_of_what_is_stored(conn: BaseDBAsyncClient) -> None:
    batches = [[row(1), row(2)], [row(3, note="n"), row(4, owner="b")], [row(1, flag=None)]]
    for batch in batches:
        await insert(conn, batch, uniform=SHARED)
    shared = await stored(conn)
    await conn.execute_query("DELETE FROM probe")

    for batch in batches:
        await insert(conn, batch)

    assert await stored(conn) == shared


async def test_rows_that_share_every_column_are_all_stored(conn: BaseDBAsyncClient) -> None:
    await insert(conn, [row(1)], uniform=COLUMNS)

    assert await stored(conn) == [("r1", "a", 1, True, None)]


async def test_constants_are_stored_in_every_row_beside_shared_and_varying_columns(conn: BaseDBAsyncClient) -> None:
    inserted = await insert_rows(
        conn,
        "probe",
        ("id", "n", "flag"),
        [["r1", 1, True], ["r2", 2, True]],
        UPSERT,
        returning="id",
        types=("text", "bigint", "boolean"),
        constants={"owner": "c", "note": "k", "at": AT},
        uniform=("flag",),
    )

    assert sorted(r["id"] for r in inserted) == ["r1", "r2"]
    assert await stored(conn) == [("r1", "c", 1, True, "k"), ("r2", "c", 2, True, "k")]
    moments = await conn.execute_query_dict("SELECT at FROM probe ORDER BY id")
    assert [str(m["at"]) for m in moments] == [str(AT), str(AT)]
