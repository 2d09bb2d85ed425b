"""Users: created with a first API token, listed, moved between plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from app.accounts.auth_version import raise_version
from app.accounts.context import ServiceContext
from app.accounts.models import ApiToken, Plan, User
from app.accounts.tokens import FIRST_TOKEN_NAME, hash_token, new_token
from app.audit import writes as audit
from app.errors import BadUserInput, FieldError, NotFound


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or "\x00" in email:
        raise BadUserInput("Invalid email address", [FieldError("/email", "not an email address")])
    return email


@dataclass(frozen=True)
class UserSummary:
    id: str
    email: str
    plan: Plan
    installs: int
    created_at: datetime


@dataclass(frozen=True)
class PlanChange:
    user: User
    old: Plan
    new: Plan
    installs: int

    @property
    def changed(self) -> bool:
        return self.old != self.new


class AccountService:
    """Users: created, found, listed, moved between plans (built by app/platform.py, reached as
    `platform.accounts`). Their tokens are `platform.tokens`'s (app/accounts/tokens.py)."""

    async def create_user(self, email: str, plan: Plan = Plan.FREE) -> tuple[User, str]:
        """Creates a user and an API token; returns the token once (only its hash is stored)."""
        email = normalized_email(email)
        token = new_token()
        try:
            async with in_transaction():
                user = await User.create(email=email, plan=plan)
                await ApiToken.create(user=user, token_hash=hash_token(token), name=FIRST_TOKEN_NAME)
        except IntegrityError:
            raise BadUserInput(
                "A user with this email already exists", [FieldError("/email", "already taken")]
            ) from None
        return user, token

    async def get_user(self, ctx: ServiceContext) -> User:
        return await User.get(id=ctx.user_id)

    async def find_user(self, email: str) -> User:
        user = await User.get_or_none(email=normalized_email(email))
        if user is None:
            raise NotFound(f"No user with the email {email.strip().lower()}")
        return user

    async def list_users(self) -> list[UserSummary]:
        """Every user, oldest first, with their number of installed plugins."""
        rows = (
            await User.annotate(installs=Count("plugins"))
            .order_by("created_at", "email")
            .values("id", "email", "plan", "installs", "created_at")
        )
        return [
            UserSummary(r["id"], r["email"], Plan(r["plan"]), int(r["installs"] or 0), r["created_at"]) for r in rows
        ]

    async def _installs_of(self, user_id: str) -> int:
        rows = await User.filter(id=user_id).annotate(installs=Count("plugins")).values("installs")
        return int(rows[0]["installs"] or 0) if rows else 0

    async def set_plan(self, email: str, plan: Plan, via: str) -> PlanChange:
        """Moves a user to another plan. Installs beyond the new plan's limit stay; the install check
        refuses new ones until the user is under the limit again."""
        user = await self.find_user(email)
        async with in_transaction() as conn:
            # The same lock an install takes: the count below and the new plan are seen together.
            locked = await User.filter(id=user.id).select_for_update().first()
            if locked is None:
                raise NotFound(f"No user with the email {user.email}")
            installs = await self._installs_of(user.id)
            old = Plan(locked.plan)
            if old != plan:
                await User.filter(id=user.id).update(plan=plan)
                await raise_version(conn)  # the plan its tokens' cached contexts hold
                await audit.record_for(
                    user.id, "user.set_plan", "user", user.id, {"from": old.value, "to": plan.value, "via": via}
                )
            locked.plan = plan
        return PlanChange(user=locked, old=old, new=plan, installs=installs)
