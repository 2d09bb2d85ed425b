"""A read path where the ORM's query building and row handling showed in the profile: a user's
installs with their plugins, in one hand-written statement, made into read models by hand.

tortoise's `Model._init_from_db` costs about 30 µs a row here (a parse of each datetime through
iso8601, each JSON column, each field's converter): most of a 10-install read. The rows are
converted here the way tortoise's fields convert them (the tests compare both on SQLite and
PostgreSQL), with datetimes parsed by `datetime.fromisoformat`. A plugin's row changes only when
the catalog does, and many installs share one: its conversion is kept, by the row's values, so a
plugin whose row is the same is not converted again (`PluginReads`). So is an install's, by its
whole row (`InstallReads`): a page polled again converts only what changed.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient

from app.plugins import secrets
from app.plugins.models import InstallStatus, Plugin, UserPlugin
from app.sql import datetime_value, dialect_of
from app.sqlite import short_read

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class PluginRead:
    """A catalog plugin as reads show it. Shared between reads (PluginReads): read-only. Equal
    only to itself (eq=False), so that it can key a cache of what is made from it."""

    id: str
    slug: str
    name: str
    description: str
    version: str
    required_gateways: list[str]
    config_schema: dict[str, Any]
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    icon: str | None
    category: str
    is_builtin: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime
    secret_keys: frozenset[str]  # its config schema's secrets (app/plugins/secrets.py)


@dataclass(slots=True, eq=False)
class InstallRead:
    """An install as reads show it, with its plugin (the breaker's own columns left out). Not frozen:
    a frozen dataclass takes five times as long to make, and reads make many."""

    id: str
    user_id: str
    plugin_id: str
    plugin: PluginRead
    config: dict[str, Any]
    config_version: str | None
    is_enabled: bool
    status: InstallStatus
    status_reason: str | None
    run_count: int
    last_run_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


# The columns selected, in the read models' order (a model field's column may have another name).
INSTALL_FIELDS = (
    "id",
    "user_id",
    "plugin_id",
    "config",
    "config_version",
    "is_enabled",
    "status",
    "status_reason",
    "run_count",
    "last_run_at",
    "last_error",
    "consecutive_failures",
    "created_at",
    "updated_at",
)
PLUGIN_FIELDS = (
    "id",
    "slug",
    "name",
    "description",
    "version",
    "required_gateways",
    "config_schema",
    "input_schema",
    "output_schema",
    "icon",
    "category",
    "is_builtin",
    "is_active",
    "created_at",
    "updated_at",
)


@cache
def installs_sql(dialect: str) -> str:
    """The statement: an install's columns (INSTALL_FIELDS), then its plugin's (PLUGIN_FIELDS)."""
    install_columns = [f'u."{UserPlugin._meta.fields_db_projection[name]}"' for name in INSTALL_FIELDS]
    plugin_columns = [f'p."{Plugin._meta.fields_db_projection[name]}"' for name in PLUGIN_FIELDS]
    placeholder = "$1" if dialect == "postgres" else "?"  # app.sql.dialect_of
    return (
        f'SELECT {", ".join(install_columns + plugin_columns)} FROM "user_plugins" u '
        f'JOIN "plugins" p ON p."id" = u."plugin_id" WHERE u."user_id" = {placeholder} '
        'ORDER BY u."created_at", u."id"'
    )


DECODER = json.JSONDecoder()


def json_value(value: Any) -> Any:
    """A JSON column as tortoise's JSONField gives it: text (SQLite, asyncpg) is decoded. The
    decoder's raw_decode skips json.loads' checks for the usual text (what json.dumps wrote);
    anything else (whitespace around it, bytes) goes through json.loads."""
    if isinstance(value, str):
        try:
            decoded, end = DECODER.raw_decode(value)
        except json.JSONDecodeError:
            return json.loads(value)  # raises as tortoise would, or takes leading whitespace
        return decoded if end == len(value) else json.loads(value)
    return json.loads(value) if isinstance(value, bytes) else value


def plugin_of(values: Sequence[Any]) -> PluginRead:
    """A PluginRead from PLUGIN_FIELDS' values."""
    (id_, slug, name, description, version, gateways, schema, input_, output, icon, category, builtin, active, created,
     updated) = values  # fmt: skip
    config_schema = json_value(schema)
    return PluginRead(
        id=id_,
        slug=slug,
        name=name,
        description=description,
        version=version,
        required_gateways=json_value(gateways),
        config_schema=config_schema,
        input_schema=json_value(input_),
        output_schema=json_value(output),
        icon=icon,
        category=category,
        is_builtin=bool(builtin),  # SQLite gives 0 or 1, as BooleanField's converter takes them
        is_active=bool(active),
        created_at=required(datetime_value(created, "created_at", Plugin)),
        updated_at=required(datetime_value(updated, "updated_at", Plugin)),
        secret_keys=secrets.secret_keys(config_schema),
    )


def install_of(values: Sequence[Any], plugin: PluginRead) -> InstallRead:
    """An InstallRead from INSTALL_FIELDS' values."""
    (id_, user_id, plugin_id, config, config_version, enabled, status, reason, runs, last_run, last_error, failures,
     created, updated) = values  # fmt: skip
    return InstallRead(
        id=id_,
        user_id=user_id,
        plugin_id=plugin_id,
        plugin=plugin,
        config=json_value(config),
        config_version=config_version,
        is_enabled=bool(enabled),
        status=InstallStatus(status),
        status_reason=reason,
        run_count=runs,
        last_run_at=datetime_value(last_run, "last_run_at", UserPlugin),
        last_error=last_error,
        consecutive_failures=failures,
        created_at=required(datetime_value(created, "created_at", UserPlugin)),
        updated_at=required(datetime_value(updated, "updated_at", UserPlugin)),
    )


def required(value: datetime | None) -> datetime:
    if value is None:
        raise ValueError("a NOT NULL datetime column gave NULL")
    return value


class ReadsByRow(Generic[T]):
    """Read models converted, by their row's values: the same values give the same read model, so
    nothing here can be stale. At most `max_entries`, least recently used first out. What is kept
    is shared between reads: read-only."""

    def __init__(self, convert: Callable[[tuple[Any, ...]], T], max_entries: int) -> None:
        self.convert = convert
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], T] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def of(self, values: tuple[Any, ...]) -> T:
        try:
            found = self._entries.get(values)
        except TypeError:  # a value that cannot be a key (asyncpg's decoded JSON, say)
            return self.convert(values)
        if found is not None:
            self._entries.move_to_end(values)
            return found
        made = self._entries[values] = self.convert(values)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return made


class PluginReads(ReadsByRow[PluginRead]):
    """Plugins by PLUGIN_FIELDS' values."""

    def __init__(self, max_entries: int = 256) -> None:
        super().__init__(plugin_of, max_entries)


class InstallReads(ReadsByRow[InstallRead]):
    """Installs by their whole row (INSTALL_FIELDS', then PLUGIN_FIELDS' values): an install read
    again unchanged is not converted again, nor is its plugin."""

    def __init__(self, plugins: PluginReads, max_entries: int = 1024) -> None:
        split = len(INSTALL_FIELDS)
        super().__init__(lambda row: install_of(row[:split], plugins.of(row[split:])), max_entries)


PLUGINS = PluginReads()
INSTALLS = InstallReads(PLUGINS)


async def installs_with_plugins(
    user_id: str, conn: BaseDBAsyncClient | None = None, installs: InstallReads = INSTALLS
) -> list[InstallRead]:
    """The user's installs, oldest first, each with its plugin."""
    conn = conn or UserPlugin._meta.db
    # A short read: one per install, and a user has at most one install of each catalog plugin.
    rows = await short_read(conn, installs_sql(dialect_of(conn)), [user_id])
    return [installs.of(tuple(row)) for row in rows]
