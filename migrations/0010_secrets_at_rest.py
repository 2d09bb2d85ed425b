"""Secrets at rest: the bot token's lookup hash, and every stored secret sealed.

Bot tokens, webhook secrets and plugins' `writeOnly` settings stored plain before this migration
are sealed with the process's first key (app/secrets_at_rest.py), in batches, on the migration's
connection. The key is the one `python -m app` was started with (SECRET_KEY / SECRET_KEYS, or the
embedded SQLite key file), installed before migrations run; a database with nothing to seal needs
none. Values sealed already are left as they are, so running it again changes nothing.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def seal_stored_secrets(apps: Any, schema_editor: Any) -> None:
    from app.secrets_at_rest import keyring
    from app.secrets_store import seal_plain

    await seal_plain(schema_editor.client, keyring())


class Migration(migrations.Migration):
    dependencies = [("plugboard", "0009_gateway_health")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Gateway",
            name="bot_token_hash",
            field=fields.CharField(max_length=64, null=True, db_index=True),
        ),
        # AddField does not make the index that db_index declares (CreateModel does): made here.
        ops.RunSQL(
            "CREATE INDEX idx_gateways_bot_token_hash ON gateways (bot_token_hash)",
            reverse_sql="DROP INDEX idx_gateways_bot_token_hash",
        ),
        ops.RunPython(seal_stored_secrets, ops.RunPython.noop),
    ]
