"""Rows as tests see them: every row of every table of an app, to show that a refused call changed
nothing; and one row written past the models, as an older schema held it (tests of a migration)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.sql import insert_rows
from tests.support.live import LiveApp
from tests.support.oracle import without_bookkeeping

# Written by the background loops whoever calls: which process holds which lease.
BACKGROUND_TABLES = {"leases"}


async def all_rows(app: LiveApp) -> dict[str, list[str]]:
    with app.db() as ctx:
        rows: dict[str, list[str]] = {}
        assert ctx.apps is not None
        for model in ctx.apps.get_models_iterable():
            table = model._meta.db_table
            if table in BACKGROUND_TABLES:
                continue
            rows[table] = sorted(
                repr(sorted(without_bookkeeping(table, row).items())) for row in await model.all().values()
            )
        return rows


async def insert_raw(conn: BaseDBAsyncClient, table: str, row: dict[str, Any]) -> None:
    """`row` as it is, past the models: for a database at an older migration. Text that starts
    with `{` or `[` is JSON (cast to jsonb on PostgreSQL)."""
    json_columns = [name for name, value in row.items() if isinstance(value, str) and value.startswith(("{", "["))]
    await insert_rows(conn, table, list(row), [list(row.values())], "", jsonb=json_columns)
