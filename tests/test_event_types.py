"""The event catalogue is declared once (app/event_types.py): the update kinds, the event classes
and the plugins that ship all name their events from it, and each has words for the web app."""

from __future__ import annotations

import pytest

from app.event_types import EventType
from app.plugins import contract
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.registry import PluginRegistry
from app.telegram.updates import UPDATE_KINDS


def test_every_event_class_and_update_kind_is_one_of_the_declared_types():
    classes = [
        contract.TelegramMessageEvent,
        contract.TelegramCallbackEvent,
        contract.ChatMemberEvent,
        contract.MyChatMemberEvent,
        contract.MessageSentEvent,
        contract.ScheduleTriggerEvent,
    ]
    assert {cls.type for cls in classes} == set(EventType)
    assert {kind.event for kind in UPDATE_KINDS.values()} <= set(EventType)


def test_the_plugins_that_ship_handle_declared_events_only():
    for handler in BUILTIN_HANDLERS:
        assert handler.events <= set(EventType), handler


def test_the_registry_refuses_a_plugin_that_handles_an_event_nobody_sends():
    handler = BUILTIN_HANDLERS[0]()
    handler.events = frozenset({"telegram.mesage"})  # a typo: it would never run
    with pytest.raises(ValueError, match="unknown events: \\['telegram.mesage'\\]"):
        PluginRegistry([handler])


def test_each_type_has_words_and_an_unknown_stored_type_shows_as_itself():
    assert all(event.label and event.label != event.value for event in EventType)
    assert EventType.label_of("telegram.message") == "Message"
    assert EventType.label_of("telegram.retired_kind") == "telegram.retired_kind"
