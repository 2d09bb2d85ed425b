from __future__ import annotations

import hashlib
import secrets

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.accounts.models import ApiToken, Plan, User
from app.errors import BadUserInput, FieldError

TOKEN_PREFIX = "pb_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(email: str, plan: Plan = Plan.FREE) -> tuple[User, str]:
    """Creates a user and an API token; returns the token once (only its hash is stored)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise BadUserInput("Invalid email address", [FieldError("/email", "not an email address")])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        async with in_transaction():
            user = await User.create(email=email, plan=plan)
            await ApiToken.create(user=user, token_hash=hash_token(token))
    except IntegrityError:
        raise BadUserInput("A user with this email already exists", [FieldError("/email", "already taken")])
    return user, token


async def authenticate(token: str) -> ServiceContext | None:
    """The service context for an API token, or None when the token is unknown."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        await ApiToken.filter(token_hash=hash_token(token))
        .values("user_id", "user__plan")
    )
    if not row:
        return None
    return ServiceContext(user_id=row[0]["user_id"], plan=Plan(row[0]["user__plan"]))


async def get_user(ctx: ServiceContext) -> User:
    return await User.get(id=ctx.user_id)
