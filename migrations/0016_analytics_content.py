"""What is posted and by whom: content kinds per bucket, posters per day and bucket, and their names."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0015_analytics_zones')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AnalyticsContent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_content', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('bucket', fields.BigIntField()),
                ('kind', fields.CharField(max_length=16)),
                ('messages', fields.IntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_content', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'bucket', 'kind'),), 'indexes': [Index(fields=['install_id', 'bucket'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsPosterBucket',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_poster_buckets', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('user_id', fields.BigIntField()),
                ('bucket', fields.BigIntField()),
                ('messages', fields.IntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_poster_buckets', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'user_id', 'bucket'),), 'indexes': [Index(fields=['install_id', 'bucket'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsPosterDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_poster_days', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('user_id', fields.BigIntField()),
                ('day', fields.IntField()),
                ('messages', fields.IntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_poster_days', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'user_id', 'day'),), 'indexes': [Index(fields=['install_id', 'day'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsPosterName',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_poster_names', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.BigIntField()),
                ('first_name', fields.CharField(max_length=64)),
                ('username', fields.CharField(null=True, max_length=32)),
                ('seen_at', fields.BigIntField()),
            ],
            options={'table': 'analytics_poster_names', 'app': 'plugboard', 'unique_together': (('install', 'user_id'),), 'indexes': [Index(fields=['install_id', 'seen_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
