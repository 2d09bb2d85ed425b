from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.ids import new_id

if TYPE_CHECKING:
    from app.accounts.models import User


class AuditLog(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    actor: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "plugboard.User", related_name="audit_events", on_delete=fields.CASCADE
    )
    actor_id: str
    action = fields.CharField(max_length=64)
    target_type = fields.CharField(max_length=64)
    target_id = fields.CharField(max_length=64)
    metadata: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_log"
