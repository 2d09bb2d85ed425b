"""What is posted and by whom, written with the rest of a batch's tallies and pruned with them."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from app.analytics import content, posters
from app.analytics.counting import Tally


async def record(conn: BaseDBAsyncClient, tallies: list[tuple[str, Tally]]) -> None:
    await content.record(conn, tallies)
    await posters.record(conn, tallies)


async def prune(install_id: str, keep_from: int) -> int:
    """Forgets what is before bucket `keep_from`."""
    return await content.prune(install_id, keep_from) + await posters.prune(install_id, keep_from)
