"""The webhook's cheap test of whether an update can be stored never lets through what the full
walk (app.inputs.json_problem) would find, and lets ordinary updates through without a walk."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.gateways import storable
from app.inputs import json_problem
from tests.support.hostile import scaled
from tests.support.telegram_updates import callback_update, message_update

ODD_TEXT = st.sampled_from(
    ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00", "\\", "\\u", "\\ud800", "é", "Ж", '"']
)
STRINGS = st.lists(st.one_of(ODD_TEXT, st.text(max_size=4)), max_size=5).map("".join)
INTEGERS = st.one_of(
    st.integers(min_value=-(2**63) - 2, max_value=2**63 + 2),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**70, 10**69, -(10**30), 10**18, 10**19]),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, STRINGS),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(STRINGS, children, max_size=4)),
    max_leaves=20,
)


def encodings(value: object) -> list[str]:
    """The ways a sender may write one value: ASCII with \\u escapes, or raw UTF-8 where it can."""
    texts = [json.dumps(value)]
    try:
        raw = json.dumps(value, ensure_ascii=False)
        raw.encode("utf-8")  # a lone surrogate cannot travel raw
        texts.append(raw)
    except UnicodeEncodeError:
        pass
    return texts


@pytest.mark.slow
@settings(max_examples=scaled(1_500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_whatever_the_full_walk_finds_the_cheap_test_suspects(value):
    for text in encodings(value):
        parsed, suspect = storable.parse(text)
        if json_problem(parsed, int64=True) is not None:
            assert suspect, text
            assert storable.problem(parsed, 64) is not None


@pytest.mark.parametrize(
    "text",
    [
        r'"\ud800"',
        r'"\udc00"',
        r'"a\ud800b"',
        r'"\ud800\ud800\udc00"',
        r'"\ud83d\\ude00"',
        r'"\\\ud800"',
        r'"\u0000"',
        r'{"\u0000": 1}',
        r'{"\udfff": 1}',
        "9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "-1e400",
        "1" + "0" * 400 + ".0",
        "NaN",
        "[Infinity]",
        '{"a": -Infinity}',
    ],
)
def test_each_way_a_problem_can_be_written_is_suspected(text):
    parsed, suspect = storable.parse(text)
    assert suspect
    assert storable.problem(parsed, 64) is not None


@pytest.mark.parametrize(
    "update",
    [
        message_update(1),
        message_update(2**63 - 1, text="Привет, мир 😀 ünïcödé", chat_id=-(2**63)),
        callback_update(3, data="\\ud800 is only text here"),
        {"update_id": 4, "message": {"location": {"latitude": 52.5, "longitude": -1e-300}}},
    ],
    ids=["ascii", "escaped-non-ascii-and-emoji", "escaped-backslash", "floats"],
)
def test_ordinary_updates_are_not_walked(update):
    for text in encodings(update):
        parsed, suspect = storable.parse(text)
        assert parsed == update
        assert not suspect, text


def test_parse_refuses_what_is_not_json():
    for text in ["{", '{"a": 1,}', "1" * 5_000]:
        with pytest.raises(ValueError):
            storable.parse(text)
    assert math.isnan(storable.parse("NaN")[0])
