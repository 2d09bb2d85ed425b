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
    # Raised with every change to what the user's events are routed to (installs, their states,
    # gateways, plan): processes that cache routing compare it to their copy.
    routing_version = fields.IntField(default=0, db_default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


TOKEN_NAME_MAX = 64


# An API token, known by its SHA-256 only. Valid while not revoked and not past `expires_at`;
# a revoked token keeps its row, so the audit log's references to it stay meaningful.
class ApiToken(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "plugboard.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    user_id: str
    token_hash = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=TOKEN_NAME_MAX, default="", db_default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    # Coarse: written at most once a minute per token (app/accounts/tokens.py), never on every request.
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"


# One row (id 1), raised in the transaction of every change that can end a token's use: a revocation,
# a user's deletion, a plan change. Each process's token cache reads it at most once a second
# (app/accounts/auth_version.py) and forgets every token it holds when it moved.
class AuthVersion(Model):
    id = fields.IntField(primary_key=True)
    version = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "auth_versions"
