"""Plugin events from stored updates, against the events as they were made before the light parse
(aiogram's `model_validate` of each update), side by side over the corpus of update shapes."""

from __future__ import annotations

from typing import Any

import pydantic
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

from app.gateways.models import EventKind
from app.plugins.contract import (
    ChatMemberEvent,
    MessageSentEvent,
    MyChatMemberEvent,
    PluginEvent,
    TelegramCallbackEvent,
    TelegramMessageEvent,
)
from app.plugins.events import stored_event
from app.telegram.light import callback_of, member_update_of, message_of
from app.telegram.updates import update_kind_of
from tests.support.update_corpus import generated_updates, real_updates
from tests.telegram.test_light import plain

OLD_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "message": Message,
    "channel_post": Message,
    "callback_query": CallbackQuery,
    "chat_member": ChatMemberUpdated,
    "my_chat_member": ChatMemberUpdated,
}


def old_event(update: dict[str, Any]) -> tuple[str, pydantic.BaseModel] | None:
    """What the events were made of before: the kind's aiogram model (ValidationError if refused)."""
    kind = update_kind_of(update)
    if kind is None:
        return None
    return kind.field, OLD_MODELS[kind.field].model_validate(update[kind.field])


def typed(event: PluginEvent) -> tuple[Any, Any]:
    """aiogram's object of a Telegram event, and its light fields read off that object."""
    if isinstance(event, (TelegramMessageEvent, MessageSentEvent)):
        return event.message, message_of(event.message)
    if isinstance(event, TelegramCallbackEvent):
        return event.callback_query, callback_of(event.callback_query)
    if isinstance(event, MyChatMemberEvent):
        return event.my_chat_member, member_update_of(event.my_chat_member)
    assert isinstance(event, ChatMemberEvent)
    return event.chat_member, member_update_of(event.chat_member)


def test_every_stored_update_becomes_the_event_it_became_before():
    compared = 0
    for update in real_updates() + [u for u in generated_updates(600) if isinstance(u, dict)]:
        try:
            old = old_event(update)
        except pydantic.ValidationError:
            continue  # tests/telegram/test_light.py: refused alike, or taken light with its model refused
        new = stored_event("g1", EventKind.UPDATE, update)
        if old is None:
            assert new is None
            continue
        field, model = old
        assert new is not None and not isinstance(new, MessageSentEvent)
        assert (new.gateway_id, new.update_id) == ("g1", update["update_id"])
        assert isinstance(new, TelegramMessageEvent) == (field in ("message", "channel_post"))
        if isinstance(new, TelegramMessageEvent):
            assert new.is_channel_post == (field == "channel_post")
        light_before = plain(new.light)
        model_now, light_of_model = typed(new)
        assert model_now == model and model_now.model_dump(mode="json") == model.model_dump(mode="json")
        assert light_before == plain(light_of_model)
        compared += 1
    assert compared > 800


def test_a_message_the_bot_sent_is_the_event_it_was():
    update = real_updates()[0]
    event = stored_event("g1", EventKind.MESSAGE_SENT, update["message"])
    assert isinstance(event, MessageSentEvent)
    assert event.message == Message.model_validate(update["message"])
    assert event.light.chat.id == event.message.chat.id


def test_installs_share_one_typed_object_built_on_first_ask():
    event = stored_event("g1", EventKind.UPDATE, real_updates()[0])
    assert isinstance(event, TelegramMessageEvent)
    assert not event.parsed.built  # routing and the light fields never built it
    assert event.message is event.message
