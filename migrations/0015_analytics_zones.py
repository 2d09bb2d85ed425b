"""Channel Analytics in the install's time zone: counts in 15-minute UTC buckets, users per UTC day
with the quarters they were seen in, last-seen buckets (app/analytics/zoned.py).

Rows kept before are carried over. An hour's counts go to its first quarter, a user's UTC day gets
the quarters of the hours that scope received messages in that day (a superset of when the user
posted: exact in UTC and in any zone whose days begin on the hour, such as Europe/London, at most
one local day off across the midnight for :30 and :45 zones), and a user's last day becomes its
last quarter. New events are exact in every zone.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

FULL_HALF = (1 << 48) - 1


def _day_number(column: str, postgres: bool) -> str:
    """Days since 1970-01-01 of a DATE column (tortoise keeps SQLite dates as ISO text)."""
    if postgres:
        return f"({column} - DATE '1970-01-01')"
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def _hour_bits(half: int) -> str:
    """The four quarters of each hour in one half of a UTC day's 96-bit mask, summed over distinct hours."""
    low, high = (0, 12) if half == 0 else (12, 24)
    return f"SUM(CASE WHEN hour >= {low} AND hour < {high} THEN CAST(15 AS BIGINT) << ((hour - {low}) * 4) ELSE 0 END)"


async def carry_rows_over(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    day, last_day = _day_number("day", postgres), _day_number("last_day", postgres)
    await client.execute_script(
        "INSERT INTO analytics_buckets (install_id, chat_id, bucket, received, sent, joins, leaves) "
        f"SELECT install_id, chat_id, {day} * 96 + hour * 4, received, sent, joins, leaves FROM analytics_hours"
    )
    hours = (
        f"SELECT install_id, chat_id, day, {_hour_bits(0)} AS low, {_hour_bits(1)} AS high FROM analytics_hours "
        "WHERE received > 0 GROUP BY install_id, chat_id, day "
        f"UNION ALL SELECT install_id, 0 AS chat_id, day, {_hour_bits(0)} AS low, {_hour_bits(1)} AS high FROM "
        "(SELECT DISTINCT install_id, day, hour FROM analytics_hours WHERE received > 0) AS any_chat "
        "GROUP BY install_id, day"
    )
    unknown = "COALESCE(h.low, 0) = 0 AND COALESCE(h.high, 0) = 0"
    await client.execute_script(
        "INSERT INTO analytics_user_days (install_id, chat_id, day, user_id, quarters_low, quarters_high) "
        f"SELECT u.install_id, u.chat_id, {_day_number('u.day', postgres)}, u.user_id, "
        f"CASE WHEN {unknown} THEN {FULL_HALF} ELSE COALESCE(h.low, 0) END, "
        f"CASE WHEN {unknown} THEN {FULL_HALF} ELSE COALESCE(h.high, 0) END "
        f"FROM analytics_day_users u LEFT JOIN ({hours}) AS h "
        "ON h.install_id = u.install_id AND h.chat_id = u.chat_id AND h.day = u.day"
    )
    await client.execute_script(
        "INSERT INTO analytics_seen (install_id, chat_id, user_id, last_bucket) "
        f"SELECT install_id, chat_id, user_id, {last_day} * 96 + 95 FROM analytics_users"
    )


class Migration(migrations.Migration):
    dependencies = [("plugboard", "0014_member_counts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AnalyticsBucket",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "install",
                    fields.ForeignKeyField(
                        "plugboard.UserPlugin",
                        source_field="install_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="analytics_buckets",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("chat_id", fields.BigIntField()),
                ("bucket", fields.IntField()),
                ("received", fields.IntField(default=0, db_default=0)),
                ("sent", fields.IntField(default=0, db_default=0)),
                ("joins", fields.IntField(default=0, db_default=0)),
                ("leaves", fields.IntField(default=0, db_default=0)),
            ],
            options={
                "table": "analytics_buckets",
                "app": "plugboard",
                "unique_together": (("install", "chat_id", "bucket"),),
                "indexes": [Index(fields=["install_id", "bucket", "chat_id", "received", "sent", "joins", "leaves"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AnalyticsSeen",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "install",
                    fields.ForeignKeyField(
                        "plugboard.UserPlugin",
                        source_field="install_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="analytics_last_seen",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("chat_id", fields.BigIntField()),
                ("user_id", fields.BigIntField()),
                ("last_bucket", fields.IntField()),
            ],
            options={
                "table": "analytics_seen",
                "app": "plugboard",
                "unique_together": (("install", "chat_id", "user_id"),),
                "indexes": [Index(fields=["install_id", "chat_id", "last_bucket"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AnalyticsUserDay",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "install",
                    fields.ForeignKeyField(
                        "plugboard.UserPlugin",
                        source_field="install_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="analytics_user_days",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("chat_id", fields.BigIntField()),
                ("day", fields.IntField()),
                ("user_id", fields.BigIntField()),
                ("quarters_low", fields.BigIntField(default=0, db_default=0)),
                ("quarters_high", fields.BigIntField(default=0, db_default=0)),
            ],
            options={
                "table": "analytics_user_days",
                "app": "plugboard",
                "unique_together": (("install", "chat_id", "day", "user_id"),),
                "indexes": [Index(fields=["install_id", "chat_id", "day", "user_id", "quarters_low", "quarters_high"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.RunPython(carry_rows_over, ops.RunPython.noop),
        ops.DeleteModel(name="AnalyticsDay"),
        ops.DeleteModel(name="AnalyticsDayUser"),
        ops.DeleteModel(name="AnalyticsHour"),
        ops.DeleteModel(name="AnalyticsUser"),
    ]
