"""The auth version: raised with every change that can end a token's use, read by each process's token cache."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0012_plugin_steps')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuthVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.BigIntField(default=0, db_default=0)),
            ],
            options={'table': 'auth_versions', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
