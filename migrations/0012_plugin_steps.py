"""Plugins as steps: a plugin's input and output schemas, and a run's output, figures and chain."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("plugboard", "0011_run_naming")]

    initial = False

    operations = [
        ops.AddField(model_name="Plugin", name="input_schema", field=fields.JSONField(null=True)),
        ops.AddField(model_name="Plugin", name="output_schema", field=fields.JSONField(null=True)),
        ops.AddField(model_name="RunRecord", name="output", field=fields.JSONField(null=True)),
        ops.AddField(model_name="RunRecord", name="api_calls", field=fields.IntField(default=0, db_default=0)),
        ops.AddField(model_name="RunRecord", name="tokens_used", field=fields.IntField(null=True)),
        ops.AddField(model_name="RunRecord", name="workflow_run_id", field=fields.CharField(max_length=32, null=True)),
        ops.AddField(model_name="RunRecord", name="step_index", field=fields.IntField(null=True)),
    ]
