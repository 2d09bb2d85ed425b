"""The one table of Telegram update kinds that Plugboard takes in: for each, its name in
setWebhook's `allowed_updates` (the same as the Update's field), the plugin event type it becomes,
and the cheap shape check made before an update is acknowledged.

Adding a kind is one row here, its parser in app/plugins/events.py (which refuses to load without
one) and its event class in app/plugins/contract.py. Nothing here imports aiogram: taking an update
in never pays for its types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.event_types import EventType
from app.inputs import is_int

# Every kind of update the Bot API sends (aiogram's `Update` fields less update_id; a test checks
# them against aiogram). Written out so that taking an update in never imports aiogram's types.
UPDATE_FIELDS = frozenset(
    (
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "guest_message",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
        "managed_bot",
        "subscription",
        "stopped_message_generation",
    )
)


def is_message(value: object) -> bool:
    return (
        isinstance(value, dict)
        and is_int(value.get("message_id"))
        and is_int(value.get("date"))
        and isinstance(value.get("chat"), dict)
        and is_int(value["chat"].get("id"))
    )


def is_callback(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("from"), dict)
        and is_int(value["from"].get("id"))
    )


def _is_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("status"), str)
        and isinstance(value.get("user"), dict)
        and is_int(value["user"].get("id"))
    )


def is_chat_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("chat"), dict)
        and is_int(value["chat"].get("id"))
        and is_int(value.get("date"))
        and _is_member(value.get("old_chat_member"))
        and _is_member(value.get("new_chat_member"))
    )


@dataclass(frozen=True)
class UpdateKind:
    field: str  # the Update's field; also the name setWebhook's allowed_updates takes
    event: EventType  # the plugin event type it becomes
    shape: Callable[[object], bool]  # what is checked before the update is acknowledged


UPDATE_KINDS: dict[str, UpdateKind] = {
    kind.field: kind
    for kind in (
        UpdateKind("message", EventType.TELEGRAM_MESSAGE, is_message),
        UpdateKind("channel_post", EventType.TELEGRAM_MESSAGE, is_message),
        UpdateKind("callback_query", EventType.TELEGRAM_CALLBACK, is_callback),
        UpdateKind("chat_member", EventType.TELEGRAM_CHAT_MEMBER, is_chat_member),
        UpdateKind("my_chat_member", EventType.TELEGRAM_MY_CHAT_MEMBER, is_chat_member),
    )
}

# Telegram sends every kind but a few when asked for none; a bot whose plugins need nothing asks for this.
MINIMAL_UPDATE_TYPES = ("message",)


def update_type(update: dict[str, Any]) -> str | None:
    """The kind of update, read from its keys (an update carries exactly one besides update_id)."""
    for key in update:
        if key in UPDATE_FIELDS:
            return key
    return None


def update_kind_of(update: dict[str, Any]) -> UpdateKind | None:
    """The kind of a stored update, when it is one Plugboard takes in."""
    for key in update:
        kind = UPDATE_KINDS.get(key)
        if kind is not None:
            return kind
    return None


def update_types_for(event_types: Iterable[str]) -> list[str]:
    """setWebhook's allowed_updates for plugins that handle `event_types`."""
    wanted = set(event_types)
    needed = sorted(kind.field for kind in UPDATE_KINDS.values() if kind.event in wanted)
    return needed or list(MINIMAL_UPDATE_TYPES)
