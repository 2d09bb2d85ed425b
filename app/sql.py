"""Where SQL differs between PostgreSQL and SQLite: placeholders, values, and the multi-row INSERTs
of the write paths where one statement per batch matters.

Every module that writes SQL by hand asks here which database it talks to (`is_postgres`) and how
to write its parameters (`placeholders`, `sqlite_value`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient


def dialect_of(conn: BaseDBAsyncClient) -> Literal["postgres", "sqlite"]:
    """PostgreSQL, or else SQLite: the two databases Plugboard runs on."""
    return "postgres" if conn.capabilities.dialect == "postgres" else "sqlite"


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    return dialect_of(conn) == "postgres"


def placeholders(conn: BaseDBAsyncClient, count: int, start: int = 1) -> list[str]:
    """`count` parameter markers: `$start`, `$start+1`, … on PostgreSQL, `?` on SQLite."""
    return [f"${start + n}" for n in range(count)] if is_postgres(conn) else ["?"] * count


def sqlite_value(value: object) -> object:
    """A parameter as SQLite gets it: datetimes as text, the way tortoise stores them there."""
    return str(value) if isinstance(value, datetime) else value


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_conflict: str,
    jsonb: Collection[str] = (),
    returning: str = "",
    types: Sequence[str] | None = None,
    constants: Mapping[str, object] | None = None,
) -> list[dict[str, Any]]:
    """One `INSERT … VALUES (…), (…) <on_conflict> [RETURNING …]` on PostgreSQL or SQLite; with
    `returning`, the rows it inserted or updated. `constants`: more columns, one value for every row.

    PostgreSQL gets numbered placeholders, cast to jsonb for the `jsonb` columns; SQLite gets `?`,
    and datetimes as text, the way tortoise stores them there.

    With `types` (PostgreSQL type names, one per column; "jsonb" columns take JSON text),
    PostgreSQL gets one array per column through `unnest`: the statement's text is the same for
    any number of rows, so it is parsed and planned once per connection, not once per batch.
    """
    fixed = dict(constants or {})
    if is_postgres(conn) and types is not None:
        sql = unnest_insert(table, tuple(columns), tuple(types), tuple(fixed), on_conflict)
        params: list[object] = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in columns]
        params += fixed.values()
    else:
        names = (*columns, *fixed)
        jsonb_at = tuple(n for n, name in enumerate(names) if name in jsonb) if jsonb else ()
        sql = values_insert(table, names, len(rows), on_conflict, is_postgres(conn), jsonb_at)
        if fixed:
            extra = tuple(fixed.values())
            rows = [(*row, *extra) for row in rows]
        if is_postgres(conn):
            params = [value for row in rows for value in row]
        else:  # one pass: on the hot path of the runs' records
            params = [str(value) if isinstance(value, datetime) else value for row in rows for value in row]
    if not returning:
        await conn.execute_query(sql, params)
        return []
    # execute_query would not fetch what an INSERT returns on asyncpg.
    return await conn.execute_query_dict(f"{sql} RETURNING {returning}", params)


@functools.lru_cache(maxsize=256)
def values_insert(
    table: str, columns: tuple[str, ...], rows: int, on_conflict: str, numbered: bool, jsonb_at: tuple[int, ...] = ()
) -> str:
    """`INSERT INTO table (columns) VALUES (…) × rows <on_conflict>`, with `$n` (cast to jsonb at
    `jsonb_at`) when `numbered`, else `?`."""
    width = len(columns)
    if numbered:
        casts = ["::jsonb" if c in jsonb_at else "" for c in range(width)]
        values = ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}{casts[c]}" for c in range(width)) + ")" for r in range(rows)
        )
    else:
        values = ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES {values} {on_conflict}'


@functools.lru_cache(maxsize=64)
def unnest_insert(
    table: str, columns: tuple[str, ...], types: tuple[str, ...], constants: tuple[str, ...], on_conflict: str
) -> str:
    """PostgreSQL's INSERT of one array per column (`$1` … `$n`), then one parameter per constant."""
    arrays = ", ".join(f"${n + 1}::{'text' if kind == 'jsonb' else kind}[]" for n, kind in enumerate(types))
    selected = [
        f"v.{name}::jsonb" if kind == "jsonb" else f"v.{name}" for name, kind in zip(columns, types, strict=True)
    ]
    selected += [f"${len(columns) + n + 1}" for n in range(len(constants))]
    names = ", ".join(columns)
    return (
        f'INSERT INTO "{table}" ({", ".join((*columns, *constants))}) SELECT {", ".join(selected)} '
        f"FROM unnest({arrays}) AS v({names}) {on_conflict}"
    )
