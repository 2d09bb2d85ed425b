from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from app.accounts.models import Plan
from app.gateways.models import EventKind, EventStatus, GatewayType
from app.ids import new_id
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Plugin',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('slug', fields.CharField(unique=True, db_index=True, max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('description', fields.TextField(default='', unique=False)),
                ('version', fields.CharField(default='1.0.0', db_default='1.0.0', max_length=32)),
                ('required_gateways', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('config_schema', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('icon', fields.CharField(null=True, max_length=256)),
                ('category', fields.CharField(default='general', db_default='general', max_length=64)),
                ('is_builtin', fields.BooleanField(default=True, db_default=True)),
                ('is_active', fields.BooleanField(default=True, db_index=True, db_default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'plugins', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ScheduleTick',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('plugin_slug', fields.CharField(max_length=64)),
                ('schedule', fields.CharField(max_length=64)),
                ('tick', fields.BigIntField()),
                ('fired_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'schedule_ticks', 'app': 'plugboard', 'unique_together': (('plugin_slug', 'schedule', 'tick'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('plan', fields.CharEnumField(default=Plan.FREE, description='FREE: free\nPRO: pro\nBUSINESS: business', enum_type=Plan, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('plugboard.User', source_field='user_id', db_constraint=True, to_field='id', related_name='api_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'api_tokens', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditLog',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('actor', fields.ForeignKeyField('plugboard.User', source_field='actor_id', db_constraint=True, to_field='id', related_name='audit_events', on_delete=OnDelete.CASCADE)),
                ('action', fields.CharField(max_length=64)),
                ('target_type', fields.CharField(max_length=64)),
                ('target_id', fields.CharField(max_length=64)),
                ('metadata', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_log', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Gateway',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('owner', fields.ForeignKeyField('plugboard.User', source_field='owner_id', db_index=True, db_constraint=True, to_field='id', related_name='gateways', on_delete=OnDelete.CASCADE)),
                ('type', fields.CharEnumField(description='TELEGRAM_BOT: TELEGRAM_BOT', enum_type=GatewayType, max_length=32)),
                ('name', fields.CharField(max_length=128)),
                ('bot_token', fields.CharField(max_length=256)),
                ('bot_id', fields.BigIntField(null=True, db_index=True)),
                ('bot_username', fields.CharField(null=True, max_length=64)),
                ('webhook_secret', fields.CharField(max_length=256)),
                ('is_active', fields.BooleanField(default=True, db_default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'gateways', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GatewayEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('gateway', fields.ForeignKeyField('plugboard.Gateway', source_field='gateway_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='UPDATE: update\nMESSAGE_SENT: message_sent', enum_type=EventKind, max_length=16)),
                ('key', fields.CharField(max_length=64)),
                ('chat_id', fields.BigIntField(null=True)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=EventStatus.PENDING, description='PENDING: pending\nPROCESSING: processing\nDONE: done\nFAILED: failed', enum_type=EventStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('claim', fields.CharField(null=True, max_length=32)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('processed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'gateway_events', 'app': 'plugboard', 'unique_together': (('gateway', 'kind', 'key'),), 'indexes': [Index(fields=['status', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UserPlugin',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('plugboard.User', source_field='user_id', db_index=True, db_constraint=True, to_field='id', related_name='plugins', on_delete=OnDelete.CASCADE)),
                ('plugin', fields.ForeignKeyField('plugboard.Plugin', source_field='plugin_id', db_index=True, db_constraint=True, to_field='id', related_name='installs', on_delete=OnDelete.CASCADE)),
                ('config', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('is_enabled', fields.BooleanField(default=True, db_default=True)),
                ('execution_count', fields.IntField(default=0, db_default=0)),
                ('last_executed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'user_plugins', 'app': 'plugboard', 'unique_together': (('user', 'plugin'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PluginExecution',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='executions', on_delete=OnDelete.CASCADE)),
                ('event_key', fields.CharField(max_length=128)),
                ('success', fields.BooleanField()),
                ('error', fields.TextField(null=True, unique=False)),
                ('duration_ms', fields.FloatField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'plugin_executions', 'app': 'plugboard', 'unique_together': (('install', 'event_key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PluginStorage',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='storage', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=255)),
                ('value', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'plugin_storage', 'app': 'plugboard', 'unique_together': (('install', 'key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
