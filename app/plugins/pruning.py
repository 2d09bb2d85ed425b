"""Pruning: finished inbox events and schedule ticks past the inbox's retention, runs past the
run history's, once an hour in every worker (a delete of nothing costs little)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from app.clock import utcnow
from app.db_errors import describe
from app.gateways import inbox
from app.plugins.models import RunRecord, ScheduleTick

log = logging.getLogger("app.plugins.dispatcher")

PRUNE_EVERY_SECONDS = 3600
PRUNE_RETRY_SECONDS = 60


async def prune_history(older_than: datetime, runs_older_than: datetime | None = None) -> None:
    """Old finished events and schedule ticks, and runs past the run history's retention (never
    younger than the events they deduplicate)."""
    runs_older_than = min(older_than, runs_older_than or older_than)
    await inbox.prune(older_than)
    await RunRecord.filter(created_at__lt=runs_older_than).delete()
    await ScheduleTick.filter(fired_at__lt=older_than).delete()


async def prune_forever(retention: timedelta, run_retention: timedelta) -> None:
    while True:
        try:
            now = utcnow()
            await prune_history(now - retention, now - run_retention)
        except Exception as exc:
            log.warning("pruning old events failed, trying again in %d s: %s", PRUNE_RETRY_SECONDS, describe(exc))
            await asyncio.sleep(PRUNE_RETRY_SECONDS)
            continue
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
