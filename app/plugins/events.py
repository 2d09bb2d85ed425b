"""Plugin events from what happened: a stored Telegram update (its kind from
app/telegram/updates.py), a message the bot sent, a schedule that fired.

aiogram's types are imported by the parsers only: a process that never parses an event never
pays for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.gateways.models import EventKind
from app.plugins.contract import (
    ChatMemberEvent,
    EventType,
    MessageSentEvent,
    PluginEvent,
    ScheduleTriggerEvent,
    TelegramCallbackEvent,
    TelegramMessageEvent,
)
from app.telegram.updates import UPDATE_KINDS, update_kind_of


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


# The event, from an update field's value (raises pydantic's ValidationError).
Parser = Callable[[str, int, dict[str, Any], str], PluginEvent]

PARSERS: dict[str, Parser] = {
    EventType.TELEGRAM_MESSAGE: _message,
    EventType.TELEGRAM_CALLBACK: _callback,
    EventType.TELEGRAM_CHAT_MEMBER: _chat_member,
}
_unparsed = {kind.event for kind in UPDATE_KINDS.values()} - PARSERS.keys()
if _unparsed:
    raise RuntimeError(f"update kinds without a parser: {sorted(_unparsed)}")


def load_parsers() -> None:
    """Imports aiogram's types and builds the parsers' models now, for a process about to parse
    events: at start-up rather than while its first events wait (app/aiogram_types.py builds a
    model on its first use)."""
    from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

    for model in (Message, CallbackQuery, ChatMemberUpdated):
        model.model_rebuild()


def update_event(gateway_id: str, update: dict[str, Any]) -> PluginEvent | None:
    """The plugin event of a stored Telegram update; None for a kind no plugin takes."""
    kind = update_kind_of(update)
    if kind is None:
        return None
    return PARSERS[kind.event](gateway_id, update["update_id"], update[kind.field], kind.field)


def message_sent_event(gateway_id: str, message: dict[str, Any]) -> MessageSentEvent:
    from aiogram.types import Message

    return MessageSentEvent(gateway_id, Message.model_validate(message))


def stored_event(gateway_id: str, kind: EventKind, payload: dict[str, Any]) -> PluginEvent | None:
    """The plugin event of an inbox row: a message the bot sent, or a Telegram update (None for a
    kind of update no plugin takes)."""
    if kind == EventKind.MESSAGE_SENT:
        return message_sent_event(gateway_id, payload)
    return update_event(gateway_id, payload)


def schedule_event(schedule: str, fired_at: datetime) -> ScheduleTriggerEvent:
    return ScheduleTriggerEvent(schedule=schedule, fired_at=fired_at)
