from tortoise import migrations
from tortoise.migrations import operations as ops
from app.plugins.models import InstallStatus, RunOutcome
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0005_send_limits')]

    initial = False

    operations = [
        ops.AddField(
            model_name='PluginExecution',
            name='chat_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='event_type',
            field=fields.CharField(default='', db_default='', max_length=64),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='fired_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='gateway_event_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='outcome',
            field=fields.CharEnumField(default=RunOutcome.SUCCEEDED, description='SUCCEEDED: SUCCEEDED\nFAILED: FAILED\nSKIPPED: SKIPPED', db_default='SUCCEEDED', enum_type=RunOutcome, max_length=16),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='retry_of',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='schedule',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='PluginExecution',
            name='trigger',
            field=fields.CharField(default='event', db_default='event', max_length=16),
        ),
        ops.AddIndex(
            model_name='PluginExecution',
            index=Index(fields=["install_id", "created_at", "id"]),
        ),
        ops.AddField(
            model_name='User',
            name='routing_version',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='backoff_seconds',
            field=fields.FloatField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='config_version',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='consecutive_failures',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='probe_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='status',
            field=fields.CharEnumField(default=InstallStatus.ACTIVE, description='ACTIVE: ACTIVE\nDISABLED: DISABLED\nWAITING_FOR_GATEWAY: WAITING_FOR_GATEWAY\nNEEDS_CONFIG: NEEDS_CONFIG\nFAILING: FAILING', db_default='ACTIVE', enum_type=InstallStatus, max_length=24),
        ),
        ops.AddField(
            model_name='UserPlugin',
            name='status_reason',
            field=fields.TextField(null=True, unique=False),
        ),
        # Existing installs get the state their old fields meant: an install disabled by a plugin
        # upgrade needs its config fixed (and stays enabled by its user), a disabled one is DISABLED,
        # one whose plugin needs a bot its user has not connected waits for it.
        ops.RunSQL(
            [
                "UPDATE user_plugins SET is_enabled = TRUE, status = 'NEEDS_CONFIG', status_reason = last_error, "
                "last_error = NULL WHERE last_error LIKE 'Disabled by plugin upgrade%'",
                "UPDATE user_plugins SET status = 'DISABLED', status_reason = 'Disabled by its user' WHERE NOT is_enabled",
                "UPDATE user_plugins SET config_version = (SELECT version FROM plugins WHERE plugins.id = user_plugins.plugin_id) "
                "WHERE status <> 'NEEDS_CONFIG'",
                "UPDATE user_plugins SET status = 'WAITING_FOR_GATEWAY', "
                "status_reason = 'Connect a Telegram bot: this plugin needs one' WHERE status = 'ACTIVE' "
                "AND plugin_id IN (SELECT id FROM plugins WHERE CAST(required_gateways AS TEXT) LIKE '%TELEGRAM_BOT%') "
                "AND NOT EXISTS (SELECT 1 FROM gateways WHERE gateways.owner_id = user_plugins.user_id "
                "AND gateways.is_active AND gateways.type = 'TELEGRAM_BOT')",
                "UPDATE plugin_executions SET outcome = 'FAILED' WHERE NOT success",
            ],
            reverse_sql=[],
        ),
    ]
