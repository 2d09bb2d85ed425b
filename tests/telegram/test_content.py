"""The kind of content of a message (app/telegram/content.py), taken by the light parse from the
message's own fields, against a straightforward reading of aiogram's typed Message: its
`content_type`, mapped to our kinds by the analytics tests' model (tests/analytics/model.py). Over the whole corpus of update shapes, so both agree."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiogram.types import Message
from hypothesis import given
from hypothesis import strategies as st

from app.telegram import content, light
from tests.analytics.model import kind_of
from tests.support.update_corpus import CONTENT, generated_updates, real_updates


def messages(updates: list[Any]) -> list[dict[str, Any]]:
    found = []
    for update in updates:
        if isinstance(update, dict):
            for field in ("message", "channel_post"):
                if isinstance(update.get(field), dict):
                    found.append(update[field])
    return found


def agreement(values: list[dict[str, Any]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for value in values:
        try:
            model = Message.model_validate(value)
        except ValueError:
            continue  # refused: never counted
        parsed = light.message(value)
        assert parsed.light.content == kind_of(model), value
        kinds[parsed.light.content] += 1
    return kinds


def test_every_real_message_gets_the_kind_aiogram_gives_it():
    kinds = agreement(messages(real_updates()))
    assert set(kinds) == set(content.CONTENT_KINDS), kinds  # every kind is in the corpus


def test_generated_messages_valid_and_broken_agree_too():
    kinds = agreement(messages(generated_updates(1500)))
    assert {content.TEXT, content.SERVICE} <= set(kinds)


def test_an_animation_is_not_a_document_and_a_venue_is_a_location():
    by_field = {next(iter(fields)): fields for fields in CONTENT}
    assert light.message({**base(), **by_field["animation"]}).light.content == content.ANIMATION
    assert light.message({**base(), **by_field["venue"]}).light.content == content.LOCATION
    assert light.message({**base(), "caption": "only a caption"}).light.content == content.OTHER


def test_every_field_of_the_table_is_a_field_of_aiogram_s_message_and_kinds_are_ours():
    assert content.FIELDS <= set(Message.model_fields)
    assert {kind for _, kind in content.KINDS} == set(content.CONTENT_KINDS) - {content.OTHER}


def base() -> dict[str, Any]:
    return {"message_id": 1, "date": 1_767_225_600, "chat": {"id": -5, "type": "group"}}


VALUES = st.sampled_from([None, False, 0, "", [], True, 1, "x", [1], {}, {"a": 1}])


@given(st.dictionaries(st.sampled_from(sorted(content.FIELDS) + ["caption", "chat", "date"]), VALUES, max_size=6))
def test_the_light_parse_s_reading_of_a_message_s_keys_is_the_table_s_reading(fields):
    assert content.content_kind_of(fields) == content.content_kind(fields.get)
