from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from app.gateways.models import Delivery, GatewayStatus


class Migration(migrations.Migration):
    dependencies = [("plugboard", "0008_running_retries")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Gateway",
            name="status",
            field=fields.CharEnumField(
                GatewayStatus, max_length=32, default=GatewayStatus.ACTIVE, db_default="ACTIVE"
            ),
        ),
        ops.AddField(model_name="Gateway", name="status_reason", field=fields.CharField(max_length=512, null=True)),
        ops.AddField(
            model_name="Gateway",
            name="delivery",
            field=fields.CharEnumField(Delivery, max_length=16, default=Delivery.WEBHOOK, db_default="WEBHOOK"),
        ),
        ops.AddField(model_name="Gateway", name="pending_updates", field=fields.IntField(null=True)),
        ops.AddField(model_name="Gateway", name="last_error_at", field=fields.DatetimeField(null=True)),
        ops.AddField(model_name="Gateway", name="last_error_message", field=fields.CharField(max_length=300, null=True)),
        ops.AddField(model_name="Gateway", name="checked_at", field=fields.DatetimeField(null=True)),
        # Gateways disconnected or replaced before this migration.
        ops.RunSQL(
            "UPDATE gateways SET status = 'DISCONNECTED' WHERE NOT is_active",
            reverse_sql="UPDATE gateways SET status = 'ACTIVE' WHERE status = 'DISCONNECTED'",
        ),
        ops.CreateModel(
            name="Lease",
            fields=[
                ("name", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=96)),
                ("holder", fields.CharField(max_length=64)),
                ("until", fields.DatetimeField()),
            ],
            options={"table": "leases", "app": "plugboard", "pk_attr": "name"},
            bases=["Model"],
        ),
    ]
