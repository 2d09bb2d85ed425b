"""An independent model of what is posted and by whom: the figures expected from a list of
updates, computed with aiogram's typed Message (its `content_type`, `from_user`, `sender_chat`),
never with the plugin's code (app/telegram/light.py, app/analytics/)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import Message

# aiogram's content types that are one of ours; every other is "other" or "service".
MEDIA = {
    ContentType.TEXT: "text",
    ContentType.PHOTO: "photo",
    ContentType.LIVE_PHOTO: "photo",
    ContentType.VIDEO: "video",
    ContentType.ANIMATION: "animation",
    ContentType.VOICE: "voice",
    ContentType.VIDEO_NOTE: "video_note",
    ContentType.AUDIO: "audio",
    ContentType.DOCUMENT: "document",
    ContentType.STICKER: "sticker",
    ContentType.POLL: "poll",
    ContentType.LOCATION: "location",
    ContentType.VENUE: "location",
    ContentType.CONTACT: "contact",
}
# Content types Telegram does not write itself: a person posted them.
NOT_SERVICE = {
    ContentType.UNKNOWN,
    ContentType.PAID_MEDIA,
    ContentType.STORY,
    ContentType.CHECKLIST,
    ContentType.DICE,
    ContentType.GAME,
    ContentType.INVOICE,
    ContentType.PASSPORT_DATA,
    ContentType.GIVEAWAY,
    ContentType.GIVEAWAY_WINNERS,
    ContentType.RICH_MESSAGE,
}
KINDS = "TEXT PHOTO VIDEO ANIMATION VOICE VIDEO_NOTE AUDIO DOCUMENT STICKER POLL LOCATION CONTACT SERVICE OTHER".split()


def kind_of(model: Message) -> str:
    found = ContentType(model.content_type)
    if found in MEDIA:
        return MEDIA[found]
    return "other" if found in NOT_SERVICE else "service"


@dataclass(frozen=True)
class Posted:
    moment: datetime
    chat_id: int
    kind: str
    poster: tuple[int, str, str | None] | None  # id, first name, username


def posted(update: dict[str, Any], track_users: bool = True) -> Posted | None:
    """What a received message adds, or None for any other update."""
    value = update.get("message") or update.get("channel_post")
    if value is None:
        return None
    model = Message.model_validate(value)
    sender = model.from_user
    is_poster = track_users and sender is not None and not sender.is_bot and model.sender_chat is None
    return Posted(
        model.date,
        model.chat.id,
        kind_of(model),
        (sender.id, sender.first_name[:64], sender.username and sender.username[:32])
        if is_poster and sender is not None
        else None,
    )


def expected_content(
    updates: list[dict[str, Any]], start: datetime, end: datetime, chat_id: int | None = None
) -> list[dict[str, Any]]:
    """`analytics.content` over [start, end): every kind, in the enum's order."""
    counts: Counter[str] = Counter()
    for found in filter(None, map(posted, updates)):
        if start <= found.moment < end and chat_id in (None, found.chat_id):
            counts[found.kind] += 1
    return [{"kind": kind, "count": counts[kind.lower()]} for kind in KINDS]


def expected_posters(
    updates: list[dict[str, Any]], start: datetime, end: datetime, limit: int = 10, chat_id: int | None = None
) -> list[dict[str, Any]]:
    """`analytics.topPosters(limit)` over [start, end), names from each poster's latest message."""
    messages: Counter[int] = Counter()
    names: dict[int, tuple[datetime, str, str | None]] = {}
    for found in filter(None, map(posted, updates)):
        if found.poster is None:
            continue
        user_id, first_name, username = found.poster
        if user_id not in names or found.moment >= names[user_id][0]:
            names[user_id] = (found.moment, first_name, username)
        if start <= found.moment < end and chat_id in (None, found.chat_id):
            messages[user_id] += 1
    ranked = sorted(messages.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        {"userId": str(user_id), "firstName": names[user_id][1], "username": names[user_id][2], "messages": count}
        for user_id, count in ranked
    ]
