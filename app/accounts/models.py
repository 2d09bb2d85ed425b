from enum import Enum

from tortoise import fields
from tortoise.models import Model

from app.ids import new_id


class Plan(str, Enum):
    FREE = "free"
    PRO = "pro"
    BUSINESS = "business"


class User(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    email = fields.CharField(max_length=320, unique=True)
    plan = fields.CharEnumField(Plan, max_length=16, default=Plan.FREE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class ApiToken(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "plugboard.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_tokens"
