"""What is posted and by whom, over GraphQL: `AnalyticsSummary.content` and `topPosters`.

Both read the summary's window as buckets (Window.buckets) when asked for, apart from the
summary's snapshot.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from app.analytics import content, posters
from app.analytics import service as analytics
from app.analytics.buckets import Span, zone_named
from app.errors import BadUserInput, FieldError
from app.telegram import content as kinds


@strawberry.enum(
    description="What a received message is, from its own fields; SERVICE: joins, leaves, pins, "
    "new titles and the other messages Telegram writes itself; OTHER: anything else (a game, a dice, an invoice…)."
)
class ContentKind(Enum):
    TEXT = kinds.TEXT
    PHOTO = kinds.PHOTO
    VIDEO = kinds.VIDEO
    ANIMATION = kinds.ANIMATION
    VOICE = kinds.VOICE
    VIDEO_NOTE = kinds.VIDEO_NOTE
    AUDIO = kinds.AUDIO
    DOCUMENT = kinds.DOCUMENT
    STICKER = kinds.STICKER
    POLL = kinds.POLL
    LOCATION = kinds.LOCATION
    CONTACT = kinds.CONTACT
    SERVICE = kinds.SERVICE
    OTHER = kinds.OTHER


@strawberry.type
class ContentCount:
    kind: ContentKind
    count: int = strawberry.field(description="Received messages of this kind in the window.")


@strawberry.type
class TopPoster:
    user_id: strawberry.ID = strawberry.field(description="The Telegram user id.")
    first_name: str | None = strawberry.field(description="As their latest message showed it.")
    username: str | None = strawberry.field(description="As their latest message showed it; null without one.")
    messages: int = strawberry.field(description="Messages they posted in the window.")


def summary_span(summary: analytics.Summary) -> Span:
    """The buckets of the summary's window: its days in the summary's zone."""
    return summary.window.buckets(zone_named(summary.timezone))


async def content_of(summary: analytics.Summary) -> list[ContentCount]:
    reader = summary.reader
    counts = await content.content_counts(reader.install_id, reader.chat_id, summary_span(summary), reader.gate)
    return [ContentCount(kind=ContentKind(kind), count=count) for kind, count in counts]


async def top_posters_of(summary: analytics.Summary, limit: int) -> list[TopPoster]:
    if not 1 <= limit <= posters.MAX_POSTERS:
        raise BadUserInput(
            f"limit must be 1 to {posters.MAX_POSTERS}", [FieldError("/limit", f"1 to {posters.MAX_POSTERS}")]
        )
    reader = summary.reader
    found = await posters.top_posters(reader.install_id, reader.chat_id, summary_span(summary), limit, reader.gate)
    return [
        TopPoster(
            user_id=strawberry.ID(str(p.user_id)), first_name=p.first_name, username=p.username, messages=p.messages
        )
        for p in found
    ]
