"""The light parse (app/telegram/light.py) against aiogram's, side by side over the whole corpus of
update shapes: the same decisions, the same typed objects, and light fields equal to aiogram's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

import pydantic
import pytest
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

from app.telegram import light
from app.telegram.updates import update_kind_of
from tests.support.update_corpus import COERCED, generated_updates, real_updates


class Kind:
    def __init__(
        self,
        parse: Callable[[Any], light.Parsed[Any, Any]],
        model: type[pydantic.BaseModel],
        read_from: Callable[[Any], Any],
        read: list[tuple[Any, ...]],
    ) -> None:
        self.parse, self.model, self.read_from, self.read = parse, model, read_from, read


def _under(prefix: tuple[Any, ...], paths: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [prefix + path for path in paths]


# Where in a value the light parse reads (an index of a list is "*"): an error aiogram finds there
# must be one the light parse finds too.
USER = [(), ("id",), ("is_bot",), ("first_name",), ("last_name",), ("username",)]
CHAT = [(), ("id",), ("type",), ("title",), ("username",), ("first_name",), ("last_name",)]
MEMBER = [(), ("status",), ("is_member",), *_under(("user",), USER)]
MESSAGE = [
    (),
    ("message_id",),
    ("date",),
    ("text",),
    ("caption",),
    ("new_chat_members",),
    *_under(("chat",), CHAT),
    *_under(("from",), USER),
    *_under(("sender_chat",), CHAT),
    *_under(("new_chat_members", "*"), USER),
]
MESSAGES = Kind(light.message, Message, light.message_of, MESSAGE)
KINDS = {
    "message": MESSAGES,
    "channel_post": MESSAGES,
    "callback_query": Kind(
        light.callback,
        CallbackQuery,
        light.callback_of,
        [(), ("id",), ("chat_instance",), ("data",), *_under(("from",), USER)],
    ),
    "chat_member": Kind(
        light.member_update,
        ChatMemberUpdated,
        light.member_update_of,
        [
            (),
            ("date",),
            *_under(("chat",), CHAT),
            *_under(("from",), USER),
            *_under(("old_chat_member",), MEMBER),
            *_under(("new_chat_member",), MEMBER),
        ],
    ),
}
KINDS["my_chat_member"] = KINDS["chat_member"]  # the bot's own membership: the same object


def plain(value: Any) -> Any:
    """A value with the type of every scalar in it (True is not 1), an instant as its timestamp."""
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return ("datetime", value.timestamp(), value.utcoffset())
    return (type(value).__name__, value)


def errors(exc: pydantic.ValidationError) -> list[Any]:
    return [[error["type"], list(error["loc"])] for error in exc.errors()]


def read_by_light(kind: Kind, loc: tuple[Any, ...]) -> bool:
    path = list(loc)
    if path and path[0] in ("old_chat_member", "new_chat_member") and len(path) > 1:
        path.pop(1)  # the union's tag: the member's status
    normalized = tuple("*" if isinstance(step, int) else step for step in path)
    return normalized in kind.read


def old_parse(kind: Kind, value: Any) -> pydantic.BaseModel | pydantic.ValidationError:
    try:
        return kind.model.model_validate(value)
    except pydantic.ValidationError as exc:
        return exc


@functools.cache
def corpus() -> tuple[list[dict[str, Any]], list[Any]]:
    return real_updates(), generated_updates(1500)


def kind_of(update: Any) -> tuple[str, Kind] | None:
    if not isinstance(update, dict):
        return None
    found = update_kind_of(update)
    return None if found is None else (found.field, KINDS[found.field])


def check_same(kind: Kind, value: Any) -> str:
    """Parses `value` both ways and checks they agree; which way it went."""
    old = old_parse(kind, value)
    if isinstance(old, pydantic.BaseModel):
        parsed = kind.parse(value)
        assert plain(parsed.light) == plain(kind.read_from(old))
        way = "aiogram" if parsed.built else "light"
        assert parsed.model() == old
        assert parsed.model().model_dump(mode="json") == old.model_dump(mode="json")
        return way
    try:
        parsed = kind.parse(value)
    except pydantic.ValidationError as exc:
        assert errors(exc) == errors(old)  # refused by aiogram's own parse, the same way
        return "refused"
    # Taken light: what aiogram refuses is somewhere the light parse does not read, and aiogram's
    # object, asked for, is refused the same way.
    assert [e["loc"] for e in old.errors() if read_by_light(kind, e["loc"])] == []
    with pytest.raises(pydantic.ValidationError) as refused:
        parsed.model()
    assert errors(refused.value) == errors(old)
    return "light, its model refused"


def test_updates_as_telegram_sends_them_parse_light_and_exactly_as_aiogram_parses_them():
    ways: dict[str, int] = {}
    coerced = COERCED
    for update in corpus()[0]:
        found = kind_of(update)
        if found is None:
            continue
        field, kind = found
        way = check_same(kind, update[field])
        if update[field] not in coerced:
            assert way == "light", update  # Telegram's own forms never need aiogram
        else:
            assert way == "aiogram", update  # pydantic's coercions are aiogram's to make
        ways[way] = ways.get(way, 0) + 1
    assert ways["light"] > 400 and ways["aiogram"] == len(COERCED)


def test_generated_updates_valid_and_broken_are_taken_or_refused_as_aiogram_does():
    ways: dict[str, int] = {}
    for update in corpus()[1]:
        found = kind_of(update)
        if found is None:
            continue
        field, kind = found
        way = check_same(kind, update[field])
        ways[way] = ways.get(way, 0) + 1
    # The corpus has every case: taken light, coerced by aiogram, refused, and refused only beyond
    # what the light parse reads.
    assert set(ways) == {"light", "aiogram", "refused", "light, its model refused"}, ways


def test_aiogram_s_object_is_built_once_on_first_use():
    parsed = light.message(real_updates()[0]["message"])
    assert not parsed.built
    first = parsed.model()
    assert parsed.built and parsed.model() is first
