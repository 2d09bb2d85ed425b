from tortoise import migrations
from tortoise.migrations import operations as ops
from app.plugins.models import RunOutcome
from tortoise import fields

class DescriptionOnly(ops.AlterField):
    """Only the field's description changed (RunOutcome gained RUNNING; the column is a varchar).
    Nothing to do in the database: tortoise's SQLite alter_field rebuilds the table and loses its
    unique constraint and indexes, which exactly-once depends on."""

    async def database_forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None

    async def database_backward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class Migration(migrations.Migration):
    dependencies = [('plugboard', '0007_claimable_events')]

    initial = False

    operations = [
        DescriptionOnly(
            model_name='PluginExecution',
            name='outcome',
            field=fields.CharEnumField(default=RunOutcome.SUCCEEDED, description='SUCCEEDED: SUCCEEDED\nFAILED: FAILED\nSKIPPED: SKIPPED\nRUNNING: RUNNING', db_default='SUCCEEDED', enum_type=RunOutcome, max_length=16),
        ),
    ]
