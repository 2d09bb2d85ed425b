"""A read path where the ORM's query building and row handling showed in the profile: a user's
installs with their plugins, in one hand-written statement, made into the same models."""

from __future__ import annotations

from functools import cache

from tortoise.backends.base.client import BaseDBAsyncClient

from app.plugins.models import Plugin, UserPlugin
from app.sql import dialect_of

PLUGIN_PREFIX = "plugin__"


@cache
def installs_sql(dialect: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The statement, and the install and plugin columns it selects (every column of both)."""
    install_columns = tuple(UserPlugin._meta.fields_db_projection.values())
    plugin_columns = tuple(Plugin._meta.fields_db_projection.values())
    selected = [f'u."{c}"' for c in install_columns] + [f'p."{c}" AS "{PLUGIN_PREFIX}{c}"' for c in plugin_columns]
    placeholder = "$1" if dialect == "postgres" else "?"  # app.sql.dialect_of
    sql = (
        f'SELECT {", ".join(selected)} FROM "user_plugins" u JOIN "plugins" p ON p."id" = u."plugin_id" '
        f'WHERE u."user_id" = {placeholder} ORDER BY u."created_at", u."id"'
    )
    return sql, install_columns, plugin_columns


async def installs_with_plugins(user_id: str, conn: BaseDBAsyncClient | None = None) -> list[UserPlugin]:
    """The user's installs, oldest first, each with its plugin loaded (as select_related does)."""
    conn = conn or UserPlugin._meta.db
    sql, install_columns, plugin_columns = installs_sql(dialect_of(conn))
    installs = []
    for row in await conn.execute_query_dict(sql, [user_id]):
        plugin = Plugin._init_from_db(**{c: row[PLUGIN_PREFIX + c] for c in plugin_columns})
        install = UserPlugin._init_from_db(**{c: row[c] for c in install_columns})
        install.plugin = plugin
        installs.append(install)
    return installs
