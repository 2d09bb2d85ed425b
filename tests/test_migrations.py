"""The migrations in migrations/ and the models agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.analytics.models import AnalyticsBucket, AnalyticsSeen, AnalyticsUserDay
from app.db import Database
from app.plugins.models import RunRecord, StoredValue, UserPlugin
from tests.support.databases import drop_database, new_database_url
from tests.support.rows import insert_raw

MIGRATIONS_TABLE = "tortoise_migrations"


@pytest.fixture
async def empty_databases(backend: str, tmp_path) -> AsyncIterator[tuple[Database, Database]]:
    """Two new, empty databases of the backend under test."""
    urls = [await new_database_url(backend, tmp_path) for _ in range(2)]
    dbs = [Database(url) for url in urls]
    for db in dbs:
        await db.open()
    yield dbs[0], dbs[1]
    for db in dbs:
        await db.close()
    for url in urls:
        await drop_database(backend, url)


async def sqlite_schema(db: Database) -> dict[str, Any]:
    with db.bound() as ctx:
        conn = ctx.db()
        tables = [
            row["name"]
            for row in await conn.execute_query_dict(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            if row["name"] != MIGRATIONS_TABLE
        ]
        schema: dict[str, Any] = {}
        for table in tables:
            columns = {
                (c["name"], c["type"].upper(), bool(c["notnull"]), c["dflt_value"], bool(c["pk"]))
                for c in await conn.execute_query_dict(f'PRAGMA table_info("{table}")')
            }
            indexes = set()
            for index in await conn.execute_query_dict(f'PRAGMA index_list("{table}")'):
                cols = tuple(i["name"] for i in await conn.execute_query_dict(f'PRAGMA index_info("{index["name"]}")'))
                indexes.add((cols, bool(index["unique"])))
            foreign_keys = {
                (fk["from"], fk["table"], fk["to"], fk["on_delete"])
                for fk in await conn.execute_query_dict(f'PRAGMA foreign_key_list("{table}")')
            }
            schema[table] = {"columns": columns, "indexes": indexes, "foreign_keys": foreign_keys}
        return schema


async def postgres_schema(db: Database) -> dict[str, Any]:
    with db.bound() as ctx:
        conn = ctx.db()
        columns = await conn.execute_query_dict(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> $1",
            [MIGRATIONS_TABLE],
        )
        indexes = await conn.execute_query_dict(
            "SELECT t.relname AS table_name, ix.indisunique AS is_unique, "
            "array_to_string(ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n), ',') AS cols "
            "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace ns ON ns.oid = t.relnamespace "
            "WHERE ns.nspname = 'public' AND t.relname <> $1",
            [MIGRATIONS_TABLE],
        )
        foreign_keys = await conn.execute_query_dict(
            "SELECT tc.table_name, kcu.column_name, ccu.table_name AS target, rc.delete_rule "
            "FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name "
            "JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name "
            "JOIN information_schema.referential_constraints rc ON tc.constraint_name = rc.constraint_name "
            "WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'"
        )
    schema: dict[str, Any] = {}
    for c in columns:
        table = schema.setdefault(c["table_name"], {"columns": set(), "indexes": set(), "foreign_keys": set()})
        table["columns"].add(
            (c["column_name"], c["data_type"], c["is_nullable"], c["column_default"], c["character_maximum_length"])
        )
    for i in indexes:
        schema[i["table_name"]]["indexes"].add((i["cols"], i["is_unique"]))
    for fk in foreign_keys:
        schema[fk["table_name"]]["foreign_keys"].add((fk["column_name"], fk["target"], fk["delete_rule"]))
    return schema


async def introspect(backend: str, db: Database) -> dict[str, Any]:
    return await (postgres_schema(db) if backend == "postgres" else sqlite_schema(db))


async def test_migrating_an_empty_database_gives_the_models_schema(backend, empty_databases):
    migrated, generated = empty_databases
    await migrated.migrate()
    with generated.bound() as ctx:
        await ctx.generate_schemas()

    migrated_schema = await introspect(backend, migrated)
    assert set(migrated_schema) == {
        "users",
        "api_tokens",
        "auth_versions",
        "audit_log",
        "gateways",
        "gateway_events",
        "plugins",
        "user_plugins",
        "plugin_storage",
        "plugin_executions",
        "schedule_ticks",
        "rejected_updates",
        "send_limits",
        "leases",
        "analytics_chats",
        "analytics_buckets",
        "analytics_seen",
        "analytics_user_days",
        "analytics_member_chats",
        "analytics_member_counts",
        "analytics_content",
        "analytics_poster_days",
        "analytics_poster_buckets",
        "analytics_poster_names",
        "analytics_closed_days",
        "analytics_versions",
    }
    # Migration 0007's partial index of claimable events is raw SQL, as no model can declare a
    # partial index: the migrated schema has it (remove fails otherwise), and nothing else more.
    claimable = (("id",) if backend == "sqlite" else "id", False)
    migrated_schema["gateway_events"]["indexes"].remove(claimable)
    assert migrated_schema == await introspect(backend, generated)


async def test_the_models_have_no_change_without_a_migration(backend, empty_databases):
    migrated, _ = empty_databases
    await migrated.migrate()
    assert await migrated.pending_model_changes() == []


async def test_migrating_twice_changes_nothing(backend, empty_databases):
    migrated, _ = empty_databases
    await migrated.migrate()
    before = await introspect(backend, migrated)
    await migrated.migrate()
    assert await introspect(backend, migrated) == before


async def test_the_schema_keeps_the_constraints_the_data_model_needs(backend, empty_databases):
    migrated, _ = empty_databases
    await migrated.migrate()
    schema = await introspect(backend, migrated)
    unique = {table: {i[0] for i in t["indexes"] if i[1]} for table, t in schema.items()}
    indexed = {table: {i[0] for i in t["indexes"]} for table, t in schema.items()}
    as_cols = (lambda *cols: ",".join(cols)) if backend == "postgres" else (lambda *cols: tuple(cols))
    assert as_cols("slug") in unique["plugins"]
    assert as_cols("is_active") in indexed["plugins"]
    assert as_cols("user_id", "plugin_id") in unique["user_plugins"]
    assert as_cols("user_id") in indexed["user_plugins"]
    assert as_cols("plugin_id") in indexed["user_plugins"]
    assert as_cols("email") in unique["users"]
    assert as_cols("gateway_id", "kind", "key") in unique["gateway_events"]
    cascade = "CASCADE"
    assert any(fk[0] == "user_id" and fk[-1] == cascade for fk in schema["user_plugins"]["foreign_keys"])


async def test_migration_0011_renames_in_the_state_only(backend, empty_databases):
    """0011 renames PluginExecution, PluginStorage and UserPlugin's execution_count and
    last_executed_at in tortoise's state only: a database at 0010 keeps its schema, and what it
    holds reads through the new names."""
    db, _ = empty_databases
    await db.migrate(up_to="0010_secrets_at_rest")
    before = await introspect(backend, db)
    with db.bound() as ctx:
        conn = ctx.db()
        pg = backend == "postgres"

        stamp: Any = datetime(2026, 1, 1, tzinfo=UTC) if pg else "2026-01-01 00:00:00+00:00"
        await insert_raw(
            conn, "users", {"id": "u" * 32, "email": "old@example.com", "plan": "pro", "created_at": stamp}
        )
        await insert_raw(
            conn,
            "plugins",
            {
                "id": "p" * 32,
                "slug": "counter",
                "name": "Counter",
                "description": "",
                "required_gateways": "[]",
                "config_schema": "{}",
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
        await insert_raw(
            conn,
            "user_plugins",
            {
                "id": "i" * 32,
                "user_id": "u" * 32,
                "plugin_id": "p" * 32,
                "config": "{}",
                "execution_count": 3,
                "last_executed_at": stamp,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
        await insert_raw(
            conn,
            "plugin_executions",
            {
                "id": "r" * 32,
                "install_id": "i" * 32,
                "event_key": "update:1",
                "success": True,
                "duration_ms": 1.5,
                "created_at": stamp,
            },
        )
        await insert_raw(
            conn,
            "plugin_storage",
            {"id": "s" * 32, "install_id": "i" * 32, "key": "seen", "value": "7", "updated_at": stamp},
        )

    assert await db.migrate(up_to="0011_run_naming") == ["0011_run_naming"]
    assert await introspect(backend, db) == before
    with db.bound():
        install = await UserPlugin.get(id="i" * 32)
        assert (install.run_count, install.last_run_at) == (3, datetime(2026, 1, 1, tzinfo=UTC))
        # values_list: the columns 0011 knows (later migrations add more to these models)
        assert await install.runs.all().values_list("event_key", flat=True) == ["update:1"]
        assert await RunRecord.filter(install_id=install.id).values_list("id", flat=True) == ["r" * 32]
        assert await StoredValue.filter(install_id=install.id).values_list("key", "value") == [("seen", 7)]
    assert await db.pending_model_changes() == []


async def test_migration_0015_carries_hours_and_users_over_to_buckets(backend, empty_databases):
    """0015 moves UTC hour rows to their first quarter, gives each user-day the quarters of the hours
    its scope received messages in, and a user's last day its last quarter."""
    db, _ = empty_databases
    await db.migrate(up_to="0014_member_counts")
    pg = backend == "postgres"
    stamp: Any = datetime(2026, 1, 1, tzinfo=UTC) if pg else "2026-01-01 00:00:00+00:00"
    day: Any = date(2026, 6, 15) if pg else "2026-06-15"
    with db.bound() as ctx:
        conn = ctx.db()
        await insert_raw(
            conn, "users", {"id": "u" * 32, "email": "old@example.com", "plan": "pro", "created_at": stamp}
        )
        plugin = {"id": "p" * 32, "slug": "analytics", "name": "Channel Analytics", "description": ""}
        await insert_raw(
            conn,
            "plugins",
            {**plugin, "required_gateways": "[]", "config_schema": "{}", "created_at": stamp, "updated_at": stamp},
        )
        install = {"id": "i" * 32, "user_id": "u" * 32, "plugin_id": "p" * 32, "config": "{}"}
        await insert_raw(conn, "user_plugins", {**install, "created_at": stamp, "updated_at": stamp})
        for chat, hour, received in ((-1, 3, 2), (-2, 13, 1), (-2, 3, 0)):
            row = {"install_id": "i" * 32, "chat_id": chat, "day": day, "hour": hour, "received": received}
            await insert_raw(conn, "analytics_hours", {**row, "sent": 1, "joins": 0, "leaves": 0})
        for chat in (-1, 0):
            await insert_raw(
                conn, "analytics_day_users", {"install_id": "i" * 32, "chat_id": chat, "day": day, "user_id": 7}
            )
            await insert_raw(
                conn, "analytics_users", {"install_id": "i" * 32, "chat_id": chat, "user_id": 7, "last_day": day}
            )
        await insert_raw(conn, "analytics_day_users", {"install_id": "i" * 32, "chat_id": -3, "day": day, "user_id": 8})

    assert await db.migrate(up_to="0015_analytics_zones") == ["0015_analytics_zones"]
    number = (date(2026, 6, 15) - date(1970, 1, 1)).days
    with db.bound():
        buckets = await AnalyticsBucket.all().order_by("chat_id", "bucket").values_list("chat_id", "bucket", "received")
        assert buckets == [(-2, number * 96 + 12, 0), (-2, number * 96 + 52, 1), (-1, number * 96 + 12, 2)]
        users = (
            await AnalyticsUserDay.all()
            .order_by("chat_id")
            .values_list("chat_id", "day", "quarters_low", "quarters_high")
        )
        assert users == [
            (-3, number, (1 << 48) - 1, (1 << 48) - 1),  # no hour of that chat received anything: the whole day
            (-1, number, 15 << 12, 0),  # chat -1 received in hour 3 only
            (0, number, 15 << 12, 15 << 4),  # any chat: hours 3 and 13
        ]
        assert await AnalyticsSeen.all().order_by("chat_id").values_list("chat_id", "last_bucket") == [
            (-1, number * 96 + 95),
            (0, number * 96 + 95),
        ]
    assert await db.pending_model_changes() == []
