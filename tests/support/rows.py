"""Every row of every table of an app, to show that a refused call changed nothing."""

from __future__ import annotations

from tests.support.live import LiveApp


async def all_rows(app: LiveApp) -> dict[str, list[str]]:
    with app.db() as ctx:
        rows: dict[str, list[str]] = {}
        for model in ctx.apps.get_models_iterable():
            rows[model._meta.db_table] = sorted(repr(sorted(row.items())) for row in await model.all().values())
        return rows
