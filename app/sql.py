"""Where SQL differs between PostgreSQL and SQLite: placeholders, values (and datetimes read back),
and the multi-row INSERTs of the write paths where one statement per batch matters.

Every module that writes SQL by hand asks here which database it talks to (`is_postgres`) and how
to write its parameters (`placeholders`, `sqlite_value`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from tortoise import timezone
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model


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
    uniform: Collection[str] = (),
) -> list[dict[str, Any]]:
    """One `INSERT … VALUES (…), (…) <on_conflict> [RETURNING …]` on PostgreSQL or SQLite; with
    `returning`, the rows it inserted or updated. `constants`: more columns, one value for every row.

    PostgreSQL gets numbered placeholders, cast to jsonb for the `jsonb` columns; SQLite gets `?`,
    and datetimes as text, the way tortoise stores them there.

    With `types` (PostgreSQL type names, one per column; "jsonb" columns take JSON text),
    PostgreSQL gets one array per column through `unnest`: the statement's text is the same for
    any number of rows, so it is parsed and planned once per connection, not once per batch.
    `uniform` names columns that travel there as one typed parameter when every row holds the same
    value (asyncpg checks and encodes each element of an array: most runs' columns are NULL).
    """
    fixed = dict(constants or {})
    if is_postgres(conn) and types is not None:
        arrays = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        hoisted = _hoisted(columns, arrays, uniform) if uniform and rows else ()
        sql = unnest_insert(table, tuple(columns), tuple(types), tuple(fixed), on_conflict, hoisted)
        params: list[object] = [list(array) for n, array in enumerate(arrays) if n not in hoisted]
        params += fixed.values()
        params += (arrays[n][0] for n in hoisted)
    elif is_postgres(conn):
        names = (*columns, *fixed)
        jsonb_at = tuple(n for n, name in enumerate(names) if name in jsonb) if jsonb else ()
        sql = values_insert(table, names, len(rows), on_conflict, True, jsonb_at)
        extra = tuple(fixed.values())
        params = [value for row in rows for value in (*row, *extra)]
    else:
        names = (*columns, *fixed)
        hoisted = _hoisted(columns, list(zip(*rows, strict=True)), uniform) if uniform and rows else ()
        # The values every row shares travel once: for the runs' records SQLite then parses and
        # binds a third of the parameters (4.7 against 7.5 µs a row on the bench's database).
        sql = values_select_insert(table, names, (*hoisted, *range(len(columns), len(names))), len(rows), on_conflict)
        params = [sqlite_value(rows[0][n]) for n in hoisted]
        params += (sqlite_value(value) for value in fixed.values())
        kept = [n for n in range(len(columns)) if n not in hoisted]
        # sqlite_value written out: one pass, on the hot path of the runs' records
        params += [str(row[n]) if isinstance(row[n], datetime) else row[n] for row in rows for n in kept]
    if not returning:
        await conn.execute_query(sql, params)
        return []
    # execute_query would not fetch what an INSERT returns on asyncpg.
    return await conn.execute_query_dict(f"{sql} RETURNING {returning}", params)


def _hoisted(columns: Sequence[str], arrays: Sequence[Sequence[object]], uniform: Collection[str]) -> tuple[int, ...]:
    """The positions of the `uniform` columns whose rows all hold one value; never all columns
    (the arrays give the statement its rows)."""
    hoisted = []
    for n, name in enumerate(columns):
        if name in uniform and arrays[n].count(arrays[n][0]) == len(arrays[n]):
            hoisted.append(n)
    return tuple(hoisted[: len(columns) - 1])


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


@functools.lru_cache(maxsize=256)
def values_select_insert(
    table: str, columns: tuple[str, ...], hoisted: tuple[int, ...], rows: int, on_conflict: str
) -> str:
    """SQLite's `INSERT INTO table (columns) SELECT … FROM (VALUES (…) × rows) WHERE true
    <on_conflict>`: first one `?` per hoisted column (its value for every row), then the rows'
    other columns. (`WHERE true` tells SQLite's parser that ON CONFLICT is the upsert's.) With
    nothing hoisted, the plain `values_insert`."""
    if not hoisted:
        return values_insert(table, columns, rows, on_conflict, False)
    selected, width = [], 0
    for n in range(len(columns)):
        if n in hoisted:
            selected.append("?")
        else:
            width += 1
            selected.append(f"column{width}")
    values = ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)
    return (
        f'INSERT INTO "{table}" ({", ".join(columns)}) SELECT {", ".join(selected)} '
        f"FROM (VALUES {values}) WHERE true {on_conflict}"
    )


@functools.lru_cache(maxsize=256)
def unnest_insert(
    table: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    constants: tuple[str, ...],
    on_conflict: str,
    hoisted: tuple[int, ...] = (),
) -> str:
    """PostgreSQL's INSERT of one array per column (`$1` … `$n`), then one parameter per constant,
    then one typed parameter per hoisted column (their positions in `columns`)."""
    listed = [n for n in range(len(columns)) if n not in hoisted]
    arrays = ", ".join(f"${p + 1}::{_array_type(types[n])}[]" for p, n in enumerate(listed))
    selected = [f"v.{columns[n]}::jsonb" if types[n] == "jsonb" else f"v.{columns[n]}" for n in listed]
    first = len(listed) + 1
    selected += [f"${first + p}" for p in range(len(constants))]
    first += len(constants)
    selected += [f"${first + p}::{types[n]}" for p, n in enumerate(hoisted)]
    names = ", ".join(columns[n] for n in listed)
    targets = ", ".join((*(columns[n] for n in listed), *constants, *(columns[n] for n in hoisted)))
    return (
        f'INSERT INTO "{table}" ({targets}) SELECT {", ".join(selected)} '
        f"FROM unnest({arrays}) AS v({names}) {on_conflict}"
    )


def _array_type(kind: str) -> str:
    return "text" if kind == "jsonb" else kind


def datetime_value(value: Any, field: str, model: type[Model]) -> datetime | None:
    """A datetime column as tortoise's DatetimeField gives it (use_tz: aware, in the default zone).
    SQLite's ISO text is parsed by `fromisoformat`, asyncpg's datetimes are taken as they come; anything
    else is left to the field itself."""
    if value is None:
        return None
    if timezone.get_use_tz():
        parsed = value if isinstance(value, datetime) else None  # asyncpg's, aware in UTC
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                pass
        if parsed is not None:
            zone = timezone.get_default_timezone()
            if parsed.tzinfo is None:
                return timezone.make_aware(parsed)
            if parsed.tzinfo is UTC and getattr(zone, "key", None) == "UTC":
                return parsed.replace(tzinfo=zone)  # what astimezone gives, in a third of the time
            return parsed.astimezone(zone)
    converted: datetime | None = model._meta.fields_map[field].to_python_value(value)
    return converted
