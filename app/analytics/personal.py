"""The analytics tables that hold a person's Telegram user id: the one list of them, so a table
added later is forgotten with the rest. Counters without ids (messages, a day's distinct users,
content kinds) are not personal, and stay."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.analytics import closed_days
from app.analytics.models import AnalyticsSeen, AnalyticsUserDay
from app.analytics.posting_models import AnalyticsPosterBucket, AnalyticsPosterDay, AnalyticsPosterName

PERSONAL: tuple[type[Model], ...] = (
    AnalyticsSeen,
    AnalyticsUserDay,
    AnalyticsPosterDay,
    AnalyticsPosterBucket,
    AnalyticsPosterName,
)


@dataclass(frozen=True)
class Forgotten:
    removed: dict[str, int]  # rows deleted, by table
    installs: frozenset[str]  # the installs that had some


async def forget_user(user_id: int) -> Forgotten:
    """Deletes the person's rows from every install, in one transaction."""
    installs: set[str] = set()
    removed: dict[str, int] = {}
    async with in_transaction() as conn:
        for model in PERSONAL:
            found = model.filter(user_id=user_id)
            installs.update(str(i) for i in await found.distinct().values_list("install_id", flat=True))
            removed[model._meta.db_table] = await found.delete()
        if installs:  # their days' distinct users change: rolled up again
            await closed_days.bump(conn, [(install, closed_days.WHOLE_INSTALL) for install in installs])
    return Forgotten(removed, frozenset(installs))
