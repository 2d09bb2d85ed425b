"""Hand-written multi-row INSERTs for the write paths where one statement per batch matters."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_conflict: str,
    jsonb: Collection[str] = (),
    returning: str = "",
) -> list[dict[str, Any]]:
    """One `INSERT … VALUES (…), (…) <on_conflict> [RETURNING …]` on PostgreSQL or SQLite; with
    `returning`, the rows it inserted or updated.

    PostgreSQL gets numbered placeholders, cast to jsonb for the `jsonb` columns; SQLite gets `?`,
    and datetimes as text, the way tortoise stores them there.
    """
    width = len(columns)
    if conn.capabilities.dialect == "postgres":
        casts = ["::jsonb" if column in jsonb else "" for column in columns]
        values = ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}{casts[c]}" for c in range(width)) + ")" for r in range(len(rows))
        )
        params = [value for row in rows for value in row]
    else:
        values = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(rows))
        params = [str(value) if isinstance(value, datetime) else value for row in rows for value in row]
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES {values} {on_conflict}'
    if not returning:
        await conn.execute_query(sql, params)
        return []
    # execute_query would not fetch what an INSERT returns on asyncpg.
    return await conn.execute_query_dict(f"{sql} RETURNING {returning}", params)
