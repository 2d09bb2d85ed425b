"""Member counts: the chats whose count Channel Analytics reads (last read, unavailable since) and each reading at its UTC instant."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0013_auth_version')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AnalyticsMemberChat',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_member_chats', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('gateway_id', fields.CharField(null=True, max_length=32)),
                ('title', fields.CharField(null=True, max_length=255)),
                ('last_read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('unavailable_reason', fields.CharField(null=True, max_length=300)),
                ('unavailable_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'analytics_member_chats', 'app': 'plugboard', 'unique_together': (('install', 'chat_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsMemberCount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_member_counts', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('read_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('count', fields.BigIntField(null=True)),
            ],
            options={'table': 'analytics_member_counts', 'app': 'plugboard', 'indexes': [Index(fields=['install_id', 'chat_id', 'read_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
