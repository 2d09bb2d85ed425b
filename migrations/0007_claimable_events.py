from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("plugboard", "0006_plugin_runtime")]

    initial = False

    # The claim looks for pending events, and processing ones whose lease ran out, oldest first.
    # Done events pile up for INBOX_RETENTION_HOURS; an index of the claimable ones only keeps a
    # claim's cost independent of them (on PostgreSQL and SQLite alike).
    operations = [
        ops.RunSQL(
            "CREATE INDEX IF NOT EXISTS gateway_events_claimable ON gateway_events (id) "
            "WHERE status IN ('pending', 'processing')",
            reverse_sql="DROP INDEX IF EXISTS gateway_events_claimable",
        ),
    ]
