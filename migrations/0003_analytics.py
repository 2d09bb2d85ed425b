from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0002_rejected_updates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AnalyticsChat',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_chats', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('title', fields.CharField(null=True, max_length=255)),
                ('type', fields.CharField(null=True, max_length=16)),
                ('received', fields.BigIntField(default=0, db_default=0)),
                ('sent', fields.BigIntField(default=0, db_default=0)),
                ('joins', fields.BigIntField(default=0, db_default=0)),
                ('leaves', fields.BigIntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_chats', 'app': 'plugboard', 'unique_together': (('install', 'chat_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_days', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('day', fields.DateField()),
                ('users', fields.IntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_days', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsDayUser',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_users', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('day', fields.DateField()),
                ('user_id', fields.BigIntField()),
            ],
            options={'table': 'analytics_day_users', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'day', 'user_id'),), 'indexes': [Index(fields=['install_id', 'day'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsHour',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_hours', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('day', fields.DateField()),
                ('hour', fields.SmallIntField()),
                ('received', fields.IntField(default=0, db_default=0)),
                ('sent', fields.IntField(default=0, db_default=0)),
                ('joins', fields.IntField(default=0, db_default=0)),
                ('leaves', fields.IntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_hours', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'day', 'hour'),), 'indexes': [Index(fields=['install_id', 'day'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsUser',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_seen', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('user_id', fields.BigIntField()),
                ('last_day', fields.DateField()),
            ],
            options={'table': 'analytics_users', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'user_id'),), 'indexes': [Index(fields=['install_id', 'chat_id', 'last_day'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Gateway',
            name='allowed_updates',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
