"""Every row of every table of an app, to show that a refused call changed nothing."""

from __future__ import annotations

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
