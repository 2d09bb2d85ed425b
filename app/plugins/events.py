"""Plugin events from what happened: a stored Telegram update (its kind from
app/telegram/updates.py), a message the bot sent, a schedule that fired.

A Telegram event is parsed light (app/telegram/light.py): aiogram's types are imported when a
plugin first asks for aiogram's object, or by `load_parsers` at start-up when a plugin may.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from app.gateways.models import EventKind
from app.plugins.contract import (
    ChatMemberEvent,
    EventType,
    MessageSentEvent,
    MyChatMemberEvent,
    PluginEvent,
    PluginHandler,
    ScheduleTriggerEvent,
    TelegramCallbackEvent,
    TelegramMessageEvent,
)
from app.telegram import light
from app.telegram.updates import UPDATE_KINDS, update_kind_of


def _message(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    return TelegramMessageEvent(gateway_id, update_id, light.message(value), is_channel_post=field == "channel_post")


def _callback(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    return TelegramCallbackEvent(gateway_id, update_id, light.callback(value))


def _chat_member(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    return ChatMemberEvent(gateway_id, update_id, light.member_update(value))


def _my_chat_member(gateway_id: str, update_id: int, value: dict[str, Any], field: str) -> PluginEvent:
    return MyChatMemberEvent(gateway_id, update_id, light.member_update(value))


# The event, from an update field's value (raises pydantic's ValidationError).
Parser = Callable[[str, int, dict[str, Any], str], PluginEvent]

PARSERS: dict[str, Parser] = {
    EventType.TELEGRAM_MESSAGE: _message,
    EventType.TELEGRAM_CALLBACK: _callback,
    EventType.TELEGRAM_CHAT_MEMBER: _chat_member,
    EventType.TELEGRAM_MY_CHAT_MEMBER: _my_chat_member,
}
_unparsed = {kind.event for kind in UPDATE_KINDS.values()} - PARSERS.keys()
if _unparsed:
    raise RuntimeError(f"update kinds without a parser: {sorted(_unparsed)}")


def load_parsers(handlers: Iterable[PluginHandler]) -> bool:
    """Imports aiogram's types and builds the models of the events now, for a process about to
    process events with `handlers`, when one of them may ask for aiogram's objects: at start-up
    rather than while its first events wait (app/aiogram_types.py builds a model on its first use).
    True when it did."""
    if not any(handler.typed_events for handler in handlers):
        return False
    from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

    for model in (Message, CallbackQuery, ChatMemberUpdated):
        model.model_rebuild()
    return True


def update_event(gateway_id: str, update: dict[str, Any]) -> PluginEvent | None:
    """The plugin event of a stored Telegram update; None for a kind no plugin takes."""
    kind = update_kind_of(update)
    if kind is None:
        return None
    return PARSERS[kind.event](gateway_id, update["update_id"], update[kind.field], kind.field)


def message_sent_event(gateway_id: str, message: dict[str, Any]) -> MessageSentEvent:
    return MessageSentEvent(gateway_id, light.message(message))


def stored_event(gateway_id: str, kind: EventKind, payload: dict[str, Any]) -> PluginEvent | None:
    """The plugin event of an inbox row: a message the bot sent, or a Telegram update (None for a
    kind of update no plugin takes)."""
    if kind == EventKind.MESSAGE_SENT:
        return message_sent_event(gateway_id, payload)
    return update_event(gateway_id, payload)


def schedule_event(schedule: str, fired_at: datetime) -> ScheduleTriggerEvent:
    return ScheduleTriggerEvent(schedule=schedule, fired_at=fired_at)
