"""The one table of Telegram update kinds: for each, the plugin event it becomes, its name in
setWebhook's `allowed_updates` (the same as the Update's field), the webhook's cheap shape check
and the parser. Adding a kind is one row here (and its event class in contract.py).

aiogram's types are imported by the parsers only: a process that never parses an event never
pays for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.plugins.contract import (
    SCHEDULE_TRIGGER,
    TELEGRAM_CALLBACK,
    TELEGRAM_CHAT_MEMBER,
    TELEGRAM_MESSAGE,
    TELEGRAM_MESSAGE_SENT,
    ChatMemberEvent,
    MessageSentEvent,
    PluginEvent,
    ScheduleTriggerEvent,
    TelegramCallbackEvent,
    TelegramMessageEvent,
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_message(value: object) -> bool:
    return (
        isinstance(value, dict)
        and _is_int(value.get("message_id"))
        and _is_int(value.get("date"))
        and isinstance(value.get("chat"), dict)
        and _is_int(value["chat"].get("id"))
    )


def is_callback(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("from"), dict)
        and _is_int(value["from"].get("id"))
    )


def _is_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("status"), str)
        and isinstance(value.get("user"), dict)
        and _is_int(value["user"].get("id"))
    )


def is_chat_member(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("chat"), dict)
        and _is_int(value["chat"].get("id"))
        and _is_int(value.get("date"))
        and _is_member(value.get("old_chat_member"))
        and _is_member(value.get("new_chat_member"))
    )


def _message(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    from aiogram.types import Message

    message = Message.model_validate(value)
    return TelegramMessageEvent(gateway_id, update_id, message, is_channel_post=field == "channel_post")


def _callback(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    from aiogram.types import CallbackQuery

    return TelegramCallbackEvent(gateway_id, update_id, CallbackQuery.model_validate(value))


def _chat_member(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    from aiogram.types import ChatMemberUpdated

    return ChatMemberEvent(gateway_id, update_id, ChatMemberUpdated.model_validate(value))


Parser = Callable[[str, int, dict[str, Any], str], PluginEvent]


@dataclass(frozen=True)
class UpdateKind:
    field: str  # the Update's field; also the name setWebhook's allowed_updates takes
    event: str  # the plugin event type it becomes
    shape: Callable[[object], bool]  # what the webhook checks before acknowledging
    parse: Parser  # the plugin event, from the field's value (raises pydantic's ValidationError)


UPDATE_KINDS: dict[str, UpdateKind] = {
    kind.field: kind
    for kind in (
        UpdateKind("message", TELEGRAM_MESSAGE, is_message, _message),
        UpdateKind("channel_post", TELEGRAM_MESSAGE, is_message, _message),
        UpdateKind("callback_query", TELEGRAM_CALLBACK, is_callback, _callback),
        UpdateKind("chat_member", TELEGRAM_CHAT_MEMBER, is_chat_member, _chat_member),
    )
}

# Telegram sends every kind but a few when asked for none; a bot whose plugins need nothing asks for this.
MINIMAL_UPDATE_TYPES = ("message",)


def load_parsers() -> None:
    """Imports aiogram's types and builds the parsers' models now, for a process about to parse
    events: at start-up rather than while its first events wait (app/aiogram_types.py builds a
    model on its first use)."""
    from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

    for model in (Message, CallbackQuery, ChatMemberUpdated):
        model.model_rebuild()


def update_kind_of(update: dict[str, Any]) -> UpdateKind | None:
    """The kind of a stored update: the first of its keys we take in."""
    for key in update:
        kind = UPDATE_KINDS.get(key)
        if kind is not None:
            return kind
    return None


def update_event(gateway_id: str, update: dict[str, Any]) -> PluginEvent | None:
    """The plugin event of a stored Telegram update; None for a kind no plugin takes."""
    kind = update_kind_of(update)
    if kind is None:
        return None
    return kind.parse(gateway_id, update["update_id"], update[kind.field], kind.field)


def message_sent_event(gateway_id: str, message: dict[str, Any]) -> MessageSentEvent:
    from aiogram.types import Message

    return MessageSentEvent(gateway_id, Message.model_validate(message))


def schedule_event(schedule: str, fired_at: datetime) -> ScheduleTriggerEvent:
    return ScheduleTriggerEvent(schedule=schedule, fired_at=fired_at)


def update_types_for(event_types: Iterable[str]) -> list[str]:
    """setWebhook's allowed_updates for plugins that handle `event_types`."""
    wanted = set(event_types)
    needed = sorted(kind.field for kind in UPDATE_KINDS.values() if kind.event in wanted)
    return needed or list(MINIMAL_UPDATE_TYPES)


# Events that come from elsewhere than a Telegram update: every event type a plugin can handle.
OTHER_EVENTS = (TELEGRAM_MESSAGE_SENT, SCHEDULE_TRIGGER)
