"""Chat titles as Channel Analytics last saw them, for pages that show a chat by its id (runs)."""

from __future__ import annotations

from collections.abc import Iterable

from app.analytics.models import AnalyticsChat


async def chat_titles(user_id: str, chat_ids: Iterable[int]) -> dict[int, str]:
    """The titles of those of the user's chats that Channel Analytics counted (none without it)."""
    wanted = sorted(set(chat_ids))
    if not wanted:
        return {}
    rows = await AnalyticsChat.filter(install__user_id=user_id, chat_id__in=wanted, title__isnull=False).values_list(
        "chat_id", "title"
    )
    return {int(chat_id): str(title) for chat_id, title in rows}
