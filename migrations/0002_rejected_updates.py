from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RejectedUpdate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('gateway', fields.ForeignKeyField('plugboard.Gateway', source_field='gateway_id', db_constraint=True, to_field='id', related_name='rejected_updates', on_delete=OnDelete.CASCADE)),
                ('update_id', fields.TextField(null=True, unique=False)),
                ('reason', fields.CharField(max_length=255)),
                ('body', fields.BinaryField()),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'rejected_updates', 'app': 'plugboard', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
