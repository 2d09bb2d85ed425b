from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0004_api_tokens')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SendLimit',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=96)),
                ('free_at', fields.FloatField()),
            ],
            options={'table': 'send_limits', 'app': 'plugboard', 'pk_attr': 'key'},
            bases=['Model'],
        ),
    ]
