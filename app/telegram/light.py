"""The fields of Telegram's objects that routing and the built-in plugins read, taken from a stored
update without aiogram: a message in about 2 µs, where aiogram's parse takes 20 µs and its types
165 MiB of memory.

A field is read under aiogram's name, and only in the form Telegram sends it: a JSON integer,
string, boolean or null, a date of Unix seconds. A value in any other form (one that pydantic would
coerce, such as "5" for an integer), and a required field missing, sends the whole value to
aiogram's own parse, and its model is read instead. So a light field always holds what aiogram's
model of the same value holds, and a value aiogram refuses here is refused (pydantic's
ValidationError). The rest of the value is not checked until aiogram's model is asked for
(`Parsed.model`): a plugin that never asks never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.telegram.content import OTHER, content_kind, content_kind_of

if TYPE_CHECKING:
    from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

# pydantic reads an integer date above this as milliseconds; up to it, seconds (year 2603).
_MAX_SECONDS = 20_000_000_000
CHAT_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})


class _Odd(Exception):
    """A value read here is not in the form Telegram sends: aiogram decides."""


@dataclass(frozen=True, slots=True)
class LightUser:
    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class LightChat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class LightMessage:
    message_id: int
    date: datetime
    chat: LightChat
    from_user: LightUser | None = None
    sender_chat: LightChat | None = None
    text: str | None = None
    caption: str | None = None
    new_chat_members: tuple[LightUser, ...] | None = None
    content: str = OTHER  # its kind (app/telegram/content.py), read from which fields it carries


@dataclass(frozen=True, slots=True)
class LightMember:
    """A ChatMember: its status, its user, and for a restricted one whether it is a member."""

    status: str
    user: LightUser
    is_member: bool | None = None


@dataclass(frozen=True, slots=True)
class LightMemberUpdate:
    chat: LightChat
    from_user: LightUser
    date: datetime
    old_chat_member: LightMember
    new_chat_member: LightMember


@dataclass(frozen=True, slots=True)
class LightCallback:
    id: str
    from_user: LightUser
    chat_instance: str
    data: str | None = None


L = TypeVar("L")
M = TypeVar("M")


class Parsed(Generic[L, M]):
    """One stored value: its light fields, and aiogram's model of it, built on first use."""

    __slots__ = ("value", "light", "_model", "_build")

    def __init__(self, value: dict[str, Any], light: L, build: Callable[[dict[str, Any]], M], model: M | None = None):
        self.value = value
        self.light = light
        self._build = build
        self._model = model

    @property
    def built(self) -> bool:
        """Whether aiogram's model exists yet."""
        return self._model is not None

    def model(self) -> M:
        """aiogram's model of the value (pydantic's ValidationError if aiogram refuses it)."""
        if self._model is None:
            self._model = self._build(self.value)
        return self._model


# --- reading one value ---------------------------------------------------------------------------


def _int(value: dict[str, Any], key: str) -> int:
    found = value.get(key)
    if type(found) is not int:
        raise _Odd
    return found


def _str(value: dict[str, Any], key: str) -> str:
    found = value.get(key)
    if type(found) is not str:
        raise _Odd
    return found


def _bool(value: dict[str, Any], key: str) -> bool:
    found = value.get(key)
    if type(found) is not bool:
        raise _Odd
    return found


def _opt_str(value: dict[str, Any], key: str) -> str | None:
    found = value.get(key)
    if found is not None and type(found) is not str:
        raise _Odd
    return found


def _date(value: dict[str, Any], key: str) -> datetime:
    seconds = _int(value, key)
    if not 0 <= seconds <= _MAX_SECONDS:
        raise _Odd
    return datetime.fromtimestamp(seconds, UTC)


def _object(value: Any) -> dict[str, Any]:
    if type(value) is not dict or "from_user" in value:  # aiogram also takes `from` by its Python name
        raise _Odd
    return value


def _user(value: Any) -> LightUser:
    value = _object(value)
    return LightUser(
        _int(value, "id"),
        _bool(value, "is_bot"),
        _str(value, "first_name"),
        _opt_str(value, "last_name"),
        _opt_str(value, "username"),
    )


def _opt_user(value: Any) -> LightUser | None:
    return None if value is None else _user(value)


def _chat(value: Any) -> LightChat:
    value = _object(value)
    return LightChat(
        _int(value, "id"),
        _str(value, "type"),
        _opt_str(value, "title"),
        _opt_str(value, "username"),
        _opt_str(value, "first_name"),
        _opt_str(value, "last_name"),
    )


def _message(value: Any) -> LightMessage:
    value = _object(value)
    members = value.get("new_chat_members")
    if members is not None and type(members) is not list:
        raise _Odd
    sender_chat = value.get("sender_chat")
    return LightMessage(
        _int(value, "message_id"),
        _date(value, "date"),
        _chat(value.get("chat")),
        _opt_user(value.get("from")),
        None if sender_chat is None else _chat(sender_chat),
        _opt_str(value, "text"),
        _opt_str(value, "caption"),
        None if members is None else tuple(_user(member) for member in members),
        content_kind_of(value),
    )


def _member(value: Any) -> LightMember:
    value = _object(value)
    status = _str(value, "status")
    if status not in CHAT_MEMBER_STATUSES:
        raise _Odd
    return LightMember(status, _user(value.get("user")), _bool(value, "is_member") if status == "restricted" else None)


def _member_update(value: Any) -> LightMemberUpdate:
    value = _object(value)
    return LightMemberUpdate(
        _chat(value.get("chat")),
        _user(value.get("from")),
        _date(value, "date"),
        _member(value.get("old_chat_member")),
        _member(value.get("new_chat_member")),
    )


def _callback(value: Any) -> LightCallback:
    value = _object(value)
    return LightCallback(
        _str(value, "id"), _user(value.get("from")), _str(value, "chat_instance"), _opt_str(value, "data")
    )


# --- the same fields, from aiogram's model -------------------------------------------------------


def user_of(model: Any) -> LightUser:
    return LightUser(model.id, model.is_bot, model.first_name, model.last_name, model.username)


def chat_of(model: Any) -> LightChat:
    return LightChat(model.id, model.type, model.title, model.username, model.first_name, model.last_name)


def message_of(model: Message) -> LightMessage:
    members = model.new_chat_members
    return LightMessage(
        model.message_id,
        model.date,
        chat_of(model.chat),
        None if model.from_user is None else user_of(model.from_user),
        None if model.sender_chat is None else chat_of(model.sender_chat),
        model.text,
        model.caption,
        None if members is None else tuple(user_of(member) for member in members),
        content_kind(lambda field: getattr(model, field, None)),
    )


def member_of(model: Any) -> LightMember:
    return LightMember(model.status, user_of(model.user), model.is_member if model.status == "restricted" else None)


def member_update_of(model: ChatMemberUpdated) -> LightMemberUpdate:
    return LightMemberUpdate(
        chat_of(model.chat),
        user_of(model.from_user),
        model.date,
        member_of(model.old_chat_member),
        member_of(model.new_chat_member),
    )


def callback_of(model: CallbackQuery) -> LightCallback:
    return LightCallback(model.id, user_of(model.from_user), model.chat_instance, model.data)


# --- parsing: light when it can be, aiogram's when it cannot --------------------------------------


def _validate_message(value: dict[str, Any]) -> Message:
    from aiogram.types import Message

    return Message.model_validate(value)


def _validate_member_update(value: dict[str, Any]) -> ChatMemberUpdated:
    from aiogram.types import ChatMemberUpdated

    return ChatMemberUpdated.model_validate(value)


def _validate_callback(value: dict[str, Any]) -> CallbackQuery:
    from aiogram.types import CallbackQuery

    return CallbackQuery.model_validate(value)


def message(value: dict[str, Any]) -> Parsed[LightMessage, Message]:
    try:
        return Parsed(value, _message(value), _validate_message)
    except _Odd:
        model = _validate_message(value)
        return Parsed(value, message_of(model), _validate_message, model)


def member_update(value: dict[str, Any]) -> Parsed[LightMemberUpdate, ChatMemberUpdated]:
    try:
        return Parsed(value, _member_update(value), _validate_member_update)
    except _Odd:
        model = _validate_member_update(value)
        return Parsed(value, member_update_of(model), _validate_member_update, model)


def callback(value: dict[str, Any]) -> Parsed[LightCallback, CallbackQuery]:
    try:
        return Parsed(value, _callback(value), _validate_callback)
    except _Odd:
        model = _validate_callback(value)
        return Parsed(value, callback_of(model), _validate_callback, model)
