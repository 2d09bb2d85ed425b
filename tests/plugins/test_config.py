"""Config validation: bounded cost whatever is sent, uniqueItems as JSON Schema means it, and no
value a database would refuse or store lossily."""

from __future__ import annotations

import itertools
import json
import math
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema._utils import equal as jsonschema_equal

from app.errors import BadUserInput
from app.plugins.config import (
    ConfigLimits,
    canonical,
    checked_json,
    first_duplicate,
    limit_problem,
    validate_config,
)
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from tests.support.hostile import scaled

WELCOME = WelcomeHandler.definition.config_schema
ANALYTICS = AnalyticsHandler.definition.config_schema
UNIQUE = {"type": "object", "properties": {"items": {"type": "array", "uniqueItems": True}}}


def refusal(schema: dict, config: object) -> list[dict]:
    with pytest.raises(BadUserInput) as raised:
        validate_config(schema, config)
    return cast("list[dict]", raised.value.extensions["errors"])


# --- limits --------------------------------------------------------------------------------


def test_the_reproduction_is_refused_by_the_array_limit_before_the_validator_runs():
    errors = refusal(WELCOME, {"chats": ["x", *range(20_000)]})
    assert errors == [{"path": "/chats", "message": "has 20001 items; at most 1000 are allowed"}]


def test_a_thousand_item_mixed_array_is_validated_item_by_item():
    errors = refusal(WELCOME, {"chats": ["x", *range(999)]})
    assert errors == [
        {
            "path": "/chats/0",
            "message": "'x' is not of type 'integer'",
            "keyword": "type",
            "params": {"type": "integer"},
        }
    ]
    assert validate_config(WELCOME, {"chats": list(range(1_000))})["chats"] == list(range(1_000))


def test_an_object_with_too_many_members_is_refused():
    errors = refusal(WELCOME, {f"k{n}": n for n in range(1_001)})
    assert errors == [{"path": "", "message": "has 1001 members; at most 1000 are allowed"}]


def test_nesting_is_bounded_and_the_error_points_at_the_level_too_deep():
    config: dict = {"leaf": 1}
    for _ in range(40):
        config = {"x": config}
    errors = refusal(WELCOME, config)
    assert errors == [{"path": "/x" * 32, "message": "nests deeper than 32 levels"}]


def test_a_config_nested_exactly_to_the_limit_reaches_the_validator():
    config: dict = {}
    for _ in range(31):
        config = {"x": config}
    assert limit_problem(config) is None
    errors = refusal(WELCOME, config)
    assert errors == [
        {
            "path": "/x",
            "message": "is not a known setting",
            "keyword": "additionalProperties",
            "params": {"additionalProperty": "x"},
        }
    ]


def test_a_config_larger_than_the_size_limit_is_refused():
    assert refusal(WELCOME, {"message": "x" * 70_000}) == [
        {"path": "", "message": "is larger than 65536 bytes as JSON"}
    ]
    # many small values, each within the item limit, add up too
    errors = refusal(WELCOME, {f"k{n}": ["y" * 60] * 999 for n in range(3)})
    assert errors == [{"path": "", "message": "is larger than 65536 bytes as JSON"}]


def test_the_size_is_counted_in_utf8_bytes():
    limits = ConfigLimits(max_bytes=100)
    checked_json({"m": "é" * 40}, limits)  # 80 bytes, 40 characters
    with pytest.raises(BadUserInput):
        checked_json({"m": "é" * 50}, limits)  # 100 bytes of text, more with the JSON around it


@pytest.mark.parametrize("limit", ["max_bytes", "max_items", "max_depth"])
def test_each_limit_can_be_set(limit):
    limits = ConfigLimits(**{limit: 3})
    with pytest.raises(BadUserInput):
        checked_json({"a": [[[1, 2, 3, 4]]]}, limits)


def test_the_walk_stops_at_the_first_problem_without_visiting_the_rest():
    class Exploding(list):
        def __iter__(self):
            raise AssertionError("visited")

    # the oversized array is reached first (the walk is depth first, last key first)
    assert limit_problem({"later": Exploding([1]), "chats": list(range(5_000))}).path == "/chats"


# --- values a database would refuse or store lossily ----------------------------------------


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"retention": math.nan}, "/retention"),
        ({"retention": math.inf}, "/retention"),
        ({"retention": -math.inf}, "/retention"),
    ],
    ids=["nan", "inf", "-inf"],
)
def test_nan_and_infinity_are_refused(config, path):
    [error] = refusal(ANALYTICS, config)
    assert error["path"] == path
    assert "finite" in error["message"]


SAFE_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=5)
SAFE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SAFE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SAFE_TEXT, children, max_size=4),
    max_leaves=12,
)


def pointer(parts: list) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@given(
    SAFE_JSON,
    st.sampled_from([math.nan, math.inf, -math.inf, "a\x00b", "\ud800", "x\udfff"]),
    st.randoms(use_true_random=False),
)
@settings(max_examples=300, deadline=None)
def test_a_bad_value_anywhere_is_refused_with_its_pointer(document, bad, rnd):
    config = {"root": document}
    containers: list[tuple[dict | list, list]] = []
    stack: list[tuple[object, list]] = [(config, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            containers.append((value, path))
            stack.extend((child, [*path, key]) for key, child in value.items())
        elif isinstance(value, list):
            containers.append((value, path))
            stack.extend((child, [*path, index]) for index, child in enumerate(value))
    target, path = rnd.choice(containers)
    if isinstance(target, dict):
        target["\u2603bad"] = bad
        path = [*path, "\u2603bad"]
    else:
        path = [*path, len(target)]
        target.append(bad)
    with pytest.raises(BadUserInput) as raised:
        checked_json(config)
    [error] = raised.value.errors
    assert error.path == pointer(path)
    assert error.message in (
        "must be a finite number (not NaN or Infinity)",
        "contains a NUL character",
        "contains an unpaired surrogate",
    )


@pytest.mark.parametrize("key", ["a\x00", "\ud800", "x\udc00y"])
def test_a_bad_key_is_refused_and_the_pointer_stays_printable(key):
    [error] = refusal(WELCOME, {key: 1})
    assert "has a key that" in error["message"]
    assert "\x00" not in error["path"]
    error["path"].encode("utf-8")


def test_long_values_are_not_echoed_whole_in_errors():
    [error] = refusal(ANALYTICS, {"retention": "x" * 60_000})
    assert len(error["message"]) <= 200
    with pytest.raises(BadUserInput) as raised:
        validate_config(ANALYTICS, {"retention": "x" * 60_000})
    assert len(raised.value.message) < 1_000


def test_many_errors_are_reported_up_to_a_bound():
    with pytest.raises(BadUserInput) as raised:
        validate_config(WELCOME, {"chats": [str(n) for n in range(1_000)]})
    assert len(raised.value.errors) == 50
    assert raised.value.message.endswith("; and more")
    with pytest.raises(BadUserInput) as raised:
        validate_config(WELCOME, {"chats": [str(n) for n in range(8)]})
    assert raised.value.message.endswith("; and 3 more")


# --- uniqueItems: linear, with JSON Schema's equality -----------------------------------------


KEYWORDS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 5},
        "size": {"type": "integer", "maximum": 9, "exclusiveMinimum": 0},
        "colour": {"enum": ["red", "green"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 1},
    },
    "required": ["name"],
}


@pytest.mark.parametrize(
    ("config", "keyword", "params"),
    [
        ({"name": "ab"}, "minLength", {"limit": 3}),
        ({"name": "abcdef"}, "maxLength", {"limit": 5}),
        ({"name": "abc", "size": 10}, "maximum", {"limit": 9}),
        ({"name": "abc", "size": 0}, "exclusiveMinimum", {"limit": 0}),
        ({"name": "abc", "colour": "blue"}, "enum", {"allowedValues": ["red", "green"]}),
        ({"name": "abc", "tags": ["a", "b"]}, "maxItems", {"limit": 1}),
        ({}, "required", {"missingProperty": "name"}),
    ],
)
def test_each_error_names_its_keyword_and_the_schemas_parameters_for_a_client_to_word(config, keyword, params):
    [error] = refusal(KEYWORDS, config)
    assert (error["keyword"], error["params"]) == (keyword, params)
    assert error["message"]  # the server's own words stay beside them


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),
        ([1, True], True),
        ([0, False], True),
        ([[1], [True]], True),
        ([[1], [1.0]], False),
        ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),
        ([{"a": 1}, {"a": True}], True),
        ([{"a": [1, {"b": 1.0}]}, {"a": [1.0, {"b": 1}]}], False),
        ([None, 0, False, "", [], {}], True),
        (["1", 1], True),
        ([[], {}], True),
        ([2**53 + 1, float(2**53)], True),
        ([10**20, 1e20], False),
        (["x", *range(999)], True),
        (["x", *range(998), 997], False),
    ],
)
def test_unique_items_follows_json_schema_equality(items, unique):
    assert (first_duplicate(items) is None) is unique
    duplicate = first_duplicate(items)
    errors = (
        []
        if duplicate is None
        else [
            {
                "path": "/items",
                "message": f"has non-unique elements (items {duplicate[0]} and {duplicate[1]} are equal)",
                "keyword": "uniqueItems",
                "params": {},
            }
        ]
    )
    if unique:
        validate_config(UNIQUE, {"items": items})
    else:
        assert refusal(UNIQUE, {"items": items}) == errors


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, 1e20, 10**20])
    | st.sampled_from(["", "a", "1", "true"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3)
    ),
    max_leaves=8,
)


def pairwise_unique(items: list) -> bool:
    """JSON Schema's definition, by jsonschema's own equality, compared pair by pair."""
    return not any(jsonschema_equal(a, b) for a, b in itertools.combinations(items, 2))


@pytest.mark.slow
@given(st.lists(JSON_VALUES, max_size=8))
@settings(max_examples=scaled(1_500), deadline=None)
def test_unique_items_agrees_with_jsonschema_on_generated_arrays(items):
    expected = pairwise_unique(items)
    assert (first_duplicate(items) is None) is expected
    # and with jsonschema's own keyword wherever its sorting shortcut is not in play
    stock = Draft202012Validator({"uniqueItems": True}).is_valid(items)
    if stock != expected:  # jsonschema misses duplicates that sorting does not make adjacent
        assert expected is False and stock is True


@given(JSON_VALUES, JSON_VALUES)
@settings(max_examples=scaled(1_000), deadline=None)
def test_canonical_forms_are_equal_exactly_when_the_values_are(a, b):
    assert (canonical(a) == canonical(b)) is jsonschema_equal(a, b)
    if canonical(a) == canonical(b):
        assert hash(canonical(a)) == hash(canonical(b))


@given(JSON_VALUES)
@settings(max_examples=500, deadline=None)
def test_a_value_survives_a_json_round_trip_with_the_same_canonical_form(value):
    assert canonical(json.loads(json.dumps(value))) == canonical(value)


# --- what validation still does -------------------------------------------------------------


def test_defaults_are_filled_and_the_callers_config_is_left_alone():
    sent = {"retention": 7}
    assert validate_config(ANALYTICS, sent) == {"retention": 7, "trackUsers": True, "timezone": "UTC"}
    assert sent == {"retention": 7}


def test_a_config_that_is_not_an_object_is_refused():
    assert refusal(ANALYTICS, [1]) == [{"path": "", "message": "must be an object"}]


def test_a_backslash_before_u0000_is_text_not_a_nul():
    config = {"message": "\\u0000 is how JSON writes a NUL"}
    assert validate_config(WELCOME, config)["message"] == config["message"]


def test_an_integer_json_cannot_write_is_refused_not_a_crash():
    [error] = refusal(ANALYTICS, {"retention": 10**5000})
    assert error == {"path": "", "message": "cannot be written as JSON"}


def test_a_key_that_is_not_a_string_is_refused():
    [error] = refusal(WELCOME, {"chats": [], "nested": {1: "x"}})
    assert error == {"path": "/nested", "message": "has a key that is not a string"}


def test_each_missing_required_setting_is_named_once():
    schema = {
        "type": "object",
        "required": ["url", "secret"],
        "properties": {"url": {"type": "string"}, "secret": {"type": "string"}},
    }
    with pytest.raises(BadUserInput) as raised:
        validate_config(schema, {})
    assert sorted((e.path, e.message) for e in raised.value.errors) == [
        ("/secret", "is required"),
        ("/url", "is required"),
    ]
