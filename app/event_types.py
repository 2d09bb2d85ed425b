"""The events plugins handle: each type a plugin may list in its `events`, with the words the web app
shows for it. Telegram's update kinds say which of them an update becomes (app/telegram/updates.py);
app/plugins/contract.py has the event classes."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    label: str

    def __new__(cls, value: str, label: str) -> EventType:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    TELEGRAM_MESSAGE = ("telegram.message", "Message")  # a message or a channel post
    TELEGRAM_CALLBACK = ("telegram.callback", "Button press")
    TELEGRAM_CHAT_MEMBER = ("telegram.chat_member", "Member change")
    TELEGRAM_MY_CHAT_MEMBER = ("telegram.my_chat_member", "Bot added or removed")  # the bot's own membership
    TELEGRAM_MESSAGE_SENT = ("telegram.message_sent", "Message sent")  # by the bot, through a gateway
    SCHEDULE_TRIGGER = ("schedule.trigger", "Schedule")

    @classmethod
    def label_of(cls, event_type: str) -> str:
        """The words for a run's stored event type; the type itself for one no longer known."""
        member = cls._value2member_map_.get(event_type)
        return member.label if isinstance(member, EventType) else event_type
