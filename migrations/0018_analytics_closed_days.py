"""Local days rolled up once they are closed, and the versions of each install's counted UTC days."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0017_analytics_member_reads_due')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AnalyticsClosedDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_closed_days', on_delete=OnDelete.CASCADE)),
                ('chat_id', fields.BigIntField()),
                ('zone', fields.CharField(max_length=64)),
                ('day', fields.IntField()),
                ('version', fields.BigIntField()),
                ('received', fields.BigIntField(default=0, db_default=0)),
                ('sent', fields.BigIntField(default=0, db_default=0)),
                ('joins', fields.BigIntField(default=0, db_default=0)),
                ('leaves', fields.BigIntField(default=0, db_default=0)),
                ('users', fields.BigIntField(default=0, db_default=0)),
                ('hours', fields.CharField(max_length=500)),
            ],
            options={'table': 'analytics_closed_days', 'app': 'plugboard', 'unique_together': (('install', 'chat_id', 'zone', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AnalyticsVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('install', fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='analytics_versions', on_delete=OnDelete.CASCADE)),
                ('day', fields.IntField()),
                ('version', fields.BigIntField(default=0, db_default=0)),
            ],
            options={'table': 'analytics_versions', 'app': 'plugboard', 'unique_together': (('install', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
