"""Ids (app/ids.py): random ones, and ordered ones for the rows written fastest (the run records)."""

from __future__ import annotations

import re

import pytest

from app import ids

HEX_32 = re.compile(r"[0-9a-f]{32}")


def test_an_id_is_32_hex_digits_of_randomness():
    made = {ids.new_id() for _ in range(1_000)}
    assert len(made) == 1_000
    assert all(HEX_32.fullmatch(one) for one in made)


def test_an_ordered_id_looks_like_any_other_id():
    made = {ids.new_ordered_id() for _ in range(1_000)}
    assert len(made) == 1_000  # 80 random bits after the millisecond
    assert all(HEX_32.fullmatch(one) for one in made)


def test_an_ordered_id_made_in_a_later_millisecond_sorts_after_one_made_earlier(monkeypatch: pytest.MonkeyPatch):
    clock = iter([1_765_000_000_123_999_999, 1_765_000_000_124_000_000, 1_765_000_001_000_000_000])
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock))
    first, second, third = ids.new_ordered_id(), ids.new_ordered_id(), ids.new_ordered_id()
    assert first < second < third
    assert first[:12] == f"{1_765_000_000_123:012x}"


def test_ordered_ids_keep_their_order_as_their_milliseconds_grow_by_digits(monkeypatch: pytest.MonkeyPatch):
    # 12 hex digits of milliseconds, zero-padded: text order is time order until the year 10889.
    moments = [0, 15, 16, 4_095, 4_096, 1_765_000_000_000, 16**12 - 1]
    clock = iter(ms * 1_000_000 for ms in moments)
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock))
    made = [ids.new_ordered_id() for _ in moments]
    assert made == sorted(made)
