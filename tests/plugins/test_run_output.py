"""What a run's record keeps of its output (`PluginRun.output`): the output as JSON, redacted as logs
are (bot tokens, API tokens, the install's secret settings, the run's secret inputs), and bounded: an
output larger than 16 KB is kept as a `$truncated` marker with a preview, itself within the bound.
Whatever a plugin answers, keeping it never fails: a plugin's odd output is no fault of the platform's."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.accounts.tokens import new_token
from app.logs import REDACTED
from app.plugins.run_output import MAX_DEPTH, MAX_OUTPUT_BYTES, MIN_SECRET_CHARS, TRUNCATED, stored_output

BOT_TOKEN = "123456789:AAHfW3oX_demo-token-abcdefghijklmnopq"
SECRET = "s3cret-signing-key-0123456789"


def kept(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """The output as the record keeps it, read back as JSON."""
    text = stored_output(value, secrets)
    assert text is not None
    assert len(text.encode("utf-8")) <= MAX_OUTPUT_BYTES, len(text.encode("utf-8"))
    return json.loads(text)


def test_no_output_is_kept_as_none_and_a_small_one_as_compact_json():
    assert stored_output(None) is None
    assert stored_output({"status": 204, "durationMs": 12.5}) == '{"status":204,"durationMs":12.5}'
    assert kept([1, "two", True, None, {"é": "ü"}]) == [1, "two", True, None, {"é": "ü"}]
    assert kept(0) == 0 and kept(False) is False and kept("") == ""  # falsy outputs are outputs


def test_values_json_has_no_word_for_are_kept_as_they_read():
    assert kept({"at": datetime(2026, 1, 2, tzinfo=UTC)}) == {"at": "2026-01-02 00:00:00+00:00"}
    assert kept({1: "a", (2, 3): "b"}) == {"1": "a", "(2, 3)": "b"}  # keys become text
    assert kept(("a", "b")) == ["a", "b"]


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_nan_and_infinity_are_kept_as_text(value, shown):
    assert kept({"rate": value, "list": [value]}) == {"rate": shown, "list": [shown]}


def test_nesting_deeper_than_the_bound_is_cut_with_a_marker():
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    value = kept(deep)
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert (depth, value) == (MAX_DEPTH, "[too deep]")


def test_an_integer_too_long_for_json_is_kept_as_a_marker_not_a_failure():
    """Python refuses to write an integer of 4,300+ digits as text: the plugin answered it, and
    keeping its run must not fail because of it (the run's record would be lost with the event)."""
    assert kept({"n": 2**64, "big": 10**5000}) == {"n": 2**64, "big": "[integer too large]"}


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "x\udfffy", "\x00" * 10])
def test_text_a_database_would_refuse_is_kept_readable(text):
    """A NUL (PostgreSQL's jsonb refuses \\u0000) or a lone surrogate (UTF-8 has none) in an output."""
    stored = stored_output({"text": text})
    assert stored is not None
    assert "\\u0000" not in stored and "\x00" not in stored
    stored.encode("utf-8")  # no lone surrogate left
    assert json.loads(stored)["text"]  # still something to read


# --- bounded ----------------------------------------------------------------------------------


def test_an_output_within_16_kb_is_kept_whole():
    value = "x" * (MAX_OUTPUT_BYTES - 2)  # with its quotes, exactly the bound
    assert kept(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "x" * 100_000,
        "x" * (MAX_OUTPUT_BYTES - 1),  # one byte over, with its quotes
        ["a"] * 10_000,  # quotes, escaped again in the preview
        ["\n"] * 10_000,  # backslashes too
        "\\" * 20_000,
        "é" * 20_000,  # two bytes a character: the cut keeps whole characters
        {"rows": [{"id": n, "name": f"row {n}"} for n in range(2_000)]},
    ],
    ids=["100KB", "one-over", "quotes", "newlines", "backslashes", "two-byte-chars", "rows"],
)
def test_a_larger_output_is_cut_to_a_marker_within_16_kb(value):
    whole = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    marker = kept(value)  # asserts the bound
    assert marker[TRUNCATED] is True
    assert marker["bytes"] == len(whole.encode("utf-8"))
    assert whole.startswith(marker["preview"])
    assert len(marker["preview"]) > MAX_OUTPUT_BYTES // 4  # a useful preview, not an empty one


@given(st.lists(st.text(max_size=50), min_size=400, max_size=800))
def test_whatever_the_characters_a_cut_output_stays_within_the_bound(items):
    text = stored_output(items)
    assert text is not None and len(text.encode("utf-8")) <= MAX_OUTPUT_BYTES
    json.loads(text)


# --- redacted ---------------------------------------------------------------------------------


def test_bot_tokens_and_api_tokens_are_redacted_in_values_and_keys():
    api_token = new_token()
    value = {
        "note": f"the bot is {BOT_TOKEN}, and the token {api_token}",
        "list": [BOT_TOKEN],
        BOT_TOKEN: "as a key",
        "header": "Bearer abc.def-ghi",
    }
    text = stored_output(value)
    assert text is not None
    assert BOT_TOKEN not in text and api_token not in text and "abc.def-ghi" not in text
    read = json.loads(text)
    assert read["note"] == f"the bot is {REDACTED}, and the token {REDACTED}"
    assert read["list"] == [REDACTED]
    assert read[REDACTED] == "as a key"


def test_the_secrets_given_are_redacted_wherever_they_appear():
    """The install's writeOnly settings and the run's writeOnly inputs, as the executor passes them."""
    input_secret = "input-password-42"
    value = {"echo": f"signed with {SECRET}!", "nested": [{"pw": input_secret}], SECRET: 1}
    text = stored_output(value, [SECRET, input_secret])
    assert text is not None and SECRET not in text and input_secret not in text
    assert json.loads(text) == {"echo": f"signed with {REDACTED}!", "nested": [{"pw": REDACTED}], REDACTED: 1}


def test_a_secret_shorter_than_the_minimum_is_not_searched_for():
    """A secret setting of "1" would blank every digit of every output."""
    short = "a" * (MIN_SECRET_CHARS - 1)
    assert kept({"v": f"{short}-and-more"}, (short,)) == {"v": f"{short}-and-more"}
    assert kept({"v": "a" * MIN_SECRET_CHARS}, ("a" * MIN_SECRET_CHARS,)) == {"v": REDACTED}


def test_a_cut_output_is_redacted_before_it_is_cut():
    value = {"padding": "x" * 30_000, "token": BOT_TOKEN, "secret": SECRET}
    text = stored_output(value, [SECRET])
    assert text is not None and BOT_TOKEN not in text and SECRET not in text
    value = {"token": BOT_TOKEN, "padding": "x" * 30_000}  # the secret within the preview
    text = stored_output(value, [SECRET])
    assert text is not None and BOT_TOKEN not in text
    assert REDACTED in json.loads(text)["preview"]
