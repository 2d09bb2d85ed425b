"""The analytics tables that hold a person's Telegram user id: the one list of them, so a table
added later is forgotten with the rest. Counters without ids (messages, a day's distinct users,
content kinds) are not personal, and stay."""

from __future__ import annotations

from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.analytics.models import AnalyticsDayUser, AnalyticsUser
from app.analytics.posting_models import AnalyticsPosterBucket, AnalyticsPosterDay, AnalyticsPosterName

PERSONAL: tuple[type[Model], ...] = (
    AnalyticsUser,
    AnalyticsDayUser,
    AnalyticsPosterDay,
    AnalyticsPosterBucket,
    AnalyticsPosterName,
)


async def forget_user(user_id: int) -> dict[str, int]:
    """Deletes the person's rows from every install, in one transaction: rows deleted per table."""
    async with in_transaction():
        return {model._meta.db_table: await model.filter(user_id=user_id).delete() for model in PERSONAL}
