"""What a message is: the one table of content kinds, read from the message's own fields.

The first field of `KINDS` a message carries decides its kind, so the order is the precedence: an
animation also carries `document` (Telegram sends both, for clients that do not show animations),
so `animation` comes before it; a venue carries its `location`, and is a location here. Service
messages are the ones Telegram writes itself (joins, leaves, pins, new titles, topics, video
chats, payments, gifts…). Anything else (a game, a dice, an invoice, a story…) is "other".

A field counts as carried when its value is not null, false, 0, "" or []: what aiogram's
`Message.content_type` reads as there, so both readings agree (tests/telegram/test_content.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TEXT, PHOTO, VIDEO, ANIMATION, VOICE, VIDEO_NOTE, AUDIO, DOCUMENT = (
    "text",
    "photo",
    "video",
    "animation",
    "voice",
    "video_note",
    "audio",
    "document",
)
STICKER, POLL, LOCATION, CONTACT, SERVICE, OTHER = "sticker", "poll", "location", "contact", "service", "other"
CONTENT_KINDS = (
    TEXT,
    PHOTO,
    VIDEO,
    ANIMATION,
    VOICE,
    VIDEO_NOTE,
    AUDIO,
    DOCUMENT,
    STICKER,
    POLL,
    LOCATION,
    CONTACT,
    SERVICE,
    OTHER,
)

SERVICE_FIELDS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "gift",
    "unique_gift",
    "gift_upgrade_sent",
    "connected_website",
    "write_access_allowed",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "checklist_tasks_done",
    "checklist_tasks_added",
    "direct_message_price_changed",
    "paid_message_price_changed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
    "suggested_post_approved",
    "suggested_post_approval_failed",
    "suggested_post_declined",
    "suggested_post_paid",
    "suggested_post_refunded",
    "chat_owner_left",
    "chat_owner_changed",
    "managed_bot_created",
    "poll_option_added",
    "poll_option_deleted",
    "community_chat_added",
    "community_chat_removed",
    "community_chat_joined",
    "user_shared",
)

# (field, kind), by precedence.
KINDS: tuple[tuple[str, str], ...] = (
    ("text", TEXT),
    ("animation", ANIMATION),  # before document: an animation carries one too
    ("audio", AUDIO),
    ("document", DOCUMENT),
    ("photo", PHOTO),
    ("sticker", STICKER),
    ("video", VIDEO),
    ("video_note", VIDEO_NOTE),
    ("voice", VOICE),
    ("contact", CONTACT),
    ("location", LOCATION),  # a venue carries its location
    ("poll", POLL),
    *((field, SERVICE) for field in SERVICE_FIELDS),
)
FIELDS = frozenset(field for field, _ in KINDS)
_RANKED = {field: (rank, kind) for rank, (field, kind) in enumerate(KINDS)}


def carried(value: Any) -> bool:
    return value is not None and value is not False and value != 0 and value != "" and value != []


def content_kind(read: Callable[[str], Any]) -> str:
    """The kind of the message whose field `name` is `read(name)` (None when it has none)."""
    for field, kind in KINDS:
        if carried(read(field)):
            return kind
    return OTHER


def content_kind_of(value: dict[str, Any]) -> str:
    """`content_kind` of a message as Telegram sends it: only its own keys are looked at."""
    if carried(value.get("text")):  # most messages: at once
        return TEXT
    best: tuple[int, str] | None = None
    for key in value:
        ranked = _RANKED.get(key)
        if ranked is not None and (best is None or ranked < best) and carried(value[key]):
            best = ranked
    return OTHER if best is None else best[1]
