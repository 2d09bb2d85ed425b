"""Leases: work that exactly one process does at a time, across every process on one database.

A lease is a row of `leases` (name, holder, until). `take` is one conditional upsert: it inserts
the row, or takes it over when its time has passed, or renews it when `holder` holds it already;
it answers whether `holder` holds the lease now. Times come from the database's clock, so that
processes on hosts whose clocks differ still agree (SQLite's file is on one host: its clock).
A holder renews well before `until`; one that stops `release`s, so another takes over at once; one
that dies is taken over once its lease has run out.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from app.sql import is_postgres, placeholders

# SQLite keeps tortoise's datetimes as text ("2024-05-01 12:00:00.123456+00:00"): the database's
# clock in the same form compares with them as text does.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'"
_SQLITE_UNTIL = "strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || ? || ' seconds') || '000+00:00'"


async def take(name: str, holder: str, seconds: float) -> bool:
    """Takes (or renews) the lease `name` for `seconds` from now for `holder`, unless another holds
    it still; returns whether `holder` holds it now."""
    async with in_transaction() as connection:
        if is_postgres(connection):
            rows = await connection.execute_query_dict(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.until < clock_timestamp() OR leases.holder = excluded.holder RETURNING holder",
                [name, holder, float(seconds)],
            )
        else:
            rows = await connection.execute_query_dict(
                f"INSERT INTO leases (name, holder, until) VALUES (?, ?, {_SQLITE_UNTIL})"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
                f" WHERE leases.until < {_SQLITE_NOW} OR leases.holder = excluded.holder RETURNING holder",
                [name, holder, f"{float(seconds):.3f}"],
            )
    return bool(rows)


async def release(name: str, holder: str) -> None:
    """Gives the lease up, if `holder` holds it: another process may take it at once."""
    async with in_transaction() as connection:
        mark = placeholders(connection, 2)
        await connection.execute_query(
            f"DELETE FROM leases WHERE name = {mark[0]} AND holder = {mark[1]}", [name, holder]
        )


async def holder_of(name: str) -> str | None:
    """Who holds the lease now (None when nobody does, or its time has passed)."""
    async with in_transaction() as connection:
        if is_postgres(connection):
            rows = await connection.execute_query_dict(
                "SELECT holder FROM leases WHERE name = $1 AND until >= clock_timestamp()", [name]
            )
        else:
            rows = await connection.execute_query_dict(
                f"SELECT holder FROM leases WHERE name = ? AND until >= {_SQLITE_NOW}", [name]
            )
    return str(rows[0]["holder"]) if rows else None


async def holders(prefix: str) -> dict[str, str]:
    """The leases whose names start with `prefix` (no `%` or `_` in it) that are held now, by name:
    their holders. One read, so that a process looking for free leases writes only to take one."""
    async with in_transaction() as connection:
        if is_postgres(connection):
            rows = await connection.execute_query_dict(
                "SELECT name, holder FROM leases WHERE name LIKE $1 AND until >= clock_timestamp()", [prefix + "%"]
            )
        else:
            rows = await connection.execute_query_dict(
                f"SELECT name, holder FROM leases WHERE name LIKE ? AND until >= {_SQLITE_NOW}", [prefix + "%"]
            )
    return {str(row["name"]): str(row["holder"]) for row in rows}
