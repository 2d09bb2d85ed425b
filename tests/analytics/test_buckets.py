"""The 15-minute UTC grain: every local day and hour of any zone is a whole number of buckets,
including :30 and :45 offsets and the 23- and 25-hour days of clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.buckets import (
    bucket_of,
    bucket_start,
    days_span,
    local_date,
    local_days,
    local_hour,
    local_midnight,
    zone_named,
)

ZONES = [
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "Australia/Adelaide",
    "America/St_Johns",
]
instants = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


def test_a_bucket_is_a_quarter_of_an_hour_since_the_epoch():
    assert bucket_of(datetime(1970, 1, 1, 0, 14, 59, tzinfo=UTC)) == 0
    assert bucket_of(datetime(1970, 1, 1, 0, 15, tzinfo=UTC)) == 1
    assert bucket_of(datetime(1970, 1, 1, 0, 15)) == 1  # naive is UTC
    assert bucket_start(1) == datetime(1970, 1, 1, 0, 15, tzinfo=UTC)


@given(instants, st.sampled_from(ZONES))
def test_an_instant_lies_in_the_buckets_of_its_own_local_day(moment, name):
    zone = zone_named(name)
    day = moment.astimezone(zone).date()
    span = days_span(day, day, zone)
    assert span.first <= bucket_of(moment) < span.end
    assert local_date(bucket_of(moment), zone) == day
    assert local_hour(bucket_of(moment), zone) == moment.astimezone(zone).hour


@given(st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 1, 1)), st.sampled_from(ZONES))
def test_local_days_tile_the_range_without_gap_or_overlap(start, name):
    zone = zone_named(name)
    days = local_days(start, start + timedelta(days=40), zone)
    assert [d for d, _ in days] == [start + timedelta(days=n) for n in range(41)]
    for (_, before), (_, after) in zip(days, days[1:], strict=False):
        assert before.end == after.first
        assert len(before) in (92, 94, 96, 98, 100)  # 23 to 25 hours (Lord Howe moves by 30 minutes)
    assert days_span(start, start + timedelta(days=40), zone) == type(days[0][1])(days[0][1].first, days[-1][1].end)


def test_half_and_quarter_hour_zones_begin_their_day_on_a_bucket():
    assert local_midnight(date(2026, 3, 1), zone_named("Asia/Kolkata")) == datetime(2026, 2, 28, 18, 30, tzinfo=UTC)
    assert local_midnight(date(2026, 3, 1), zone_named("Asia/Kathmandu")) == datetime(2026, 2, 28, 18, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "buckets"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 7, 1), 96)]
)
def test_clock_changes_make_a_day_of_23_or_25_hours(day, buckets):
    assert len(days_span(day, day, zone_named("Europe/London"))) == buckets


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", " UTC", "x" * 65])
def test_an_unknown_zone_is_refused(name):
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_named(name)
