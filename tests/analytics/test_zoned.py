"""app/analytics/zoned.py without a database: the SQL's arithmetic and masks put every bucket of a
span in the local day and hour zoneinfo gives it, in :30 and :45 zones and across clock changes."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.buckets import days_span, local_date, local_hour, zone_named
from app.analytics.zoned import EPOCH, QUARTERS, ZonedSpan, day_rules, offsets, range_bits

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "America/New_York", "Australia/Lord_Howe"]
starts = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 1, 1))


def offset_at(segments: tuple[tuple[int, int], ...], bucket: int) -> int:
    return [offset for since, offset in segments if since <= bucket][-1]


@settings(max_examples=60, deadline=None)
@given(starts, st.integers(1, 40), st.sampled_from(ZONES))
def test_the_offsets_give_each_buckets_local_day_and_hour(start, days, name):
    zone = zone_named(name)
    span = days_span(start, start + timedelta(days=days - 1), zone)
    segments = offsets(zone, span.first, span.end)
    for bucket in range(span.first, span.end, 7):  # every 7th: all quarters of the hour over the span
        offset = offset_at(segments, bucket)
        assert EPOCH + timedelta(days=(bucket + offset) // QUARTERS) == local_date(bucket, zone)
        assert ((bucket + offset) % QUARTERS) // 4 == local_hour(bucket, zone)


@settings(max_examples=60, deadline=None)
@given(starts, st.integers(1, 40), st.sampled_from(ZONES))
def test_the_masks_put_each_quarter_of_the_span_in_one_local_day(start, days, name):
    zone = zone_named(name)
    span = days_span(start, start + timedelta(days=days - 1), zone)
    placed: dict[int, date] = {}
    for rule in day_rules(zone, span.first, span.end):
        for day in range(rule.first_day, rule.last_day + 1):
            for delta, (low, high) in zip((-1, 0, 1), rule.masks, strict=True):
                for quarter in range(QUARTERS):
                    bits = range_bits(quarter, quarter + 1)
                    if (low & bits[0]) or (high & bits[1]):
                        bucket = day * QUARTERS + quarter
                        assert bucket not in placed
                        placed[bucket] = EPOCH + timedelta(days=day + delta)
    assert placed == {bucket: local_date(bucket, zone) for bucket in range(span.first, span.end)}
    zoned = ZonedSpan(zone, span)
    presence, params = zoned.presence_sql()
    assert presence.count("?") == len(params)
