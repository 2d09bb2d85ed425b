from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import Plan


@dataclass(frozen=True)
class ServiceContext:
    """Who is asking: every user-facing operation takes one and sees only this user's data."""

    user_id: str
    plan: Plan
    token_id: str | None = None  # the API token the request came with, when it came with one
    expires_at: datetime | None = None  # when that token stops working, if it expires
