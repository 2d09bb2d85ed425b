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
    types: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One `INSERT … VALUES (…), (…) <on_conflict> [RETURNING …]` on PostgreSQL or SQLite; with
    `returning`, the rows it inserted or updated.

    PostgreSQL gets numbered placeholders, cast to jsonb for the `jsonb` columns; SQLite gets `?`,
    and datetimes as text, the way tortoise stores them there.

    With `types` (PostgreSQL type names, one per column; "jsonb" columns take JSON text),
    PostgreSQL gets one array per column through `unnest`: the statement's text is the same for
    any number of rows, so it is parsed and planned once per connection, not once per batch.
    """
    width = len(columns)
    if types is not None and conn.capabilities.dialect == "postgres":
        return await _insert_unnest(conn, table, columns, rows, on_conflict, types, returning)
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


async def _insert_unnest(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_conflict: str,
    types: Sequence[str],
    returning: str,
) -> list[dict[str, Any]]:
    arrays = ", ".join(f"${n + 1}::{'text' if kind == 'jsonb' else kind}[]" for n, kind in enumerate(types))
    selected = ", ".join(f"v.{name}::jsonb" if kind == "jsonb" else f"v.{name}" for name, kind in zip(columns, types, strict=True))
    names = ", ".join(columns)
    sql = f'INSERT INTO "{table}" ({names}) SELECT {selected} FROM unnest({arrays}) AS v({names}) {on_conflict}'
    params = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    if not returning:
        await conn.execute_query(sql, params)
        return []
    return await conn.execute_query_dict(f"{sql} RETURNING {returning}", params)
