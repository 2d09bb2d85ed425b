from tortoise import fields
from tortoise.models import Model

from app.ids import new_id


class AuditLog(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    actor = fields.ForeignKeyField(
        "plugboard.User", related_name="audit_events", on_delete=fields.CASCADE
    )
    action = fields.CharField(max_length=64)
    target_type = fields.CharField(max_length=64)
    target_id = fields.CharField(max_length=64)
    metadata = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_log"
