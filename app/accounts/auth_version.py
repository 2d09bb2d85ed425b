"""The version that tells every process's token cache to forget what it holds (`AuthVersion`).

Raised in the same transaction as the change it announces, so a process that reads the new version
reads the change too. A cache reads it at most once a second: one primary-key read, however many
requests it serves meanwhile.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from app.accounts.models import AuthVersion

ROW_ID = 1
TABLE = AuthVersion._meta.db_table
# Both databases take the same upsert; the row is made by the first raise.
RAISE = (
    f'INSERT INTO "{TABLE}" ("id", "version") VALUES ({ROW_ID}, 1) '
    f'ON CONFLICT ("id") DO UPDATE SET "version" = "{TABLE}"."version" + 1'
)
READ = f'SELECT "version" FROM "{TABLE}" WHERE "id" = {ROW_ID}'


async def raise_version(conn: BaseDBAsyncClient) -> None:
    """Raises the version, in `conn`'s transaction."""
    await conn.execute_query(RAISE)


async def read_version(conn: BaseDBAsyncClient | None = None) -> int:
    rows = await (conn or AuthVersion._meta.db).execute_query_dict(READ)
    return int(rows[0]["version"]) if rows else 0
