"""A span of buckets as one zone sees it, written as SQL over the stored rows.

A zone's offset is constant between its clock changes, and every offset is a whole number of
quarters (app/analytics/buckets.py), so the local date of bucket `b` is `(b + offset) // 96` days
after 1970-01-01 and its local hour `((b + offset) % 96) // 4`: a read groups bucket rows by a
CASE over the span's few offsets, never by a list of its days.

Distinct users per local day come from the per-UTC-day user rows and their 96-bit masks of
quarters (AnalyticsUserDay): quarter `q` of UTC day `d` lies in local day `d - 1`, `d` or `d + 1`,
by the offset in force then. For every UTC day of a span, `day_masks` gives the three masks of
quarters that fall in each of those local days (and inside the span); runs of days with the same
masks are one `DayRule`. A user counts in a local day when their mask meets that day's part: a
union of a few index range scans, whatever the number of days.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from app.analytics.buckets import BUCKET_SECONDS, Span, bucket_start

QUARTERS = 96
HALF = 48
EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
LOW_BITS = (1 << HALF) - 1


def local_date_of(ordinal: int) -> date:
    """The date `ordinal` days after 1970-01-01 (what the SQL's local day numbers mean)."""
    return date.fromordinal(_EPOCH_ORDINAL + ordinal)


def quarter_bits(quarter: int) -> tuple[int, int]:
    """The mask of one quarter of a UTC day, as (quarters_low, quarters_high)."""
    return (1 << quarter, 0) if quarter < HALF else (0, 1 << (quarter - HALF))


def range_bits(start: int, end: int) -> tuple[int, int]:
    """The mask of quarters `start` to `end` (excluded) of a UTC day."""
    start, end = max(0, start), min(QUARTERS, end)
    if start >= end:
        return 0, 0
    bits = ((1 << end) - 1) ^ ((1 << start) - 1)
    return bits & LOW_BITS, bits >> HALF


def _offset(zone: ZoneInfo, bucket: int) -> int:
    delta = bucket_start(bucket).astimezone(zone).utcoffset()
    return int(delta.total_seconds()) // BUCKET_SECONDS if delta is not None else 0


@functools.lru_cache(maxsize=512)
def offsets(zone: ZoneInfo, first: int, end: int) -> tuple[tuple[int, int], ...]:
    """The zone's offsets in quarters over buckets `first` to `end`: (from bucket, offset), the
    first from `first`. Clock changes are found by a day's step and then halving."""
    segments = [(first, _offset(zone, first))]
    at = first
    while True:
        step = min(at + QUARTERS, end - 1)
        if step <= at:
            break
        if _offset(zone, step) == segments[-1][1]:
            at = step
            continue
        low, high = at, step  # offset(low) is the current one, offset(high) is not
        while high - low > 1:
            middle = (low + high) // 2
            if _offset(zone, middle) == segments[-1][1]:
                low = middle
            else:
                high = middle
        segments.append((high, _offset(zone, high)))
        at = high
    return tuple(segments)


@dataclass(frozen=True)
class DayRule:
    """UTC days `first_day` to `last_day` (included) whose quarters fall in local days `day - 1`,
    `day` and `day + 1` by these masks, each (low, high)."""

    first_day: int
    last_day: int
    masks: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


class ZonedSpan:
    """The buckets `span` (local days of `zone`), and how to read them by local day and hour."""

    def __init__(self, zone: ZoneInfo, span: Span) -> None:
        self.zone = zone
        self.span = span
        self.segments = offsets(zone, span.first, max(span.end, span.first + 1))

    def offset_sql(self, column: str) -> tuple[str, list[Any]]:
        """`column`'s offset in quarters, as SQL (typed: PostgreSQL cannot infer a bare parameter's type here)."""
        if len(self.segments) == 1:
            return "CAST(? AS INTEGER)", [self.segments[0][1]]
        parts, params = [], []
        for (_, offset), (until, _) in zip(self.segments, self.segments[1:], strict=False):
            parts.append(f"WHEN {column} < ? THEN CAST(? AS INTEGER)")
            params += [until, offset]
        return f"CASE {' '.join(parts)} ELSE CAST(? AS INTEGER) END", [*params, self.segments[-1][1]]

    def day_sql(self, column: str = "bucket") -> tuple[str, list[Any]]:
        """The local day number (days since 1970-01-01) of `column`, a bucket."""
        offset, params = self.offset_sql(column)
        return f"(({column} + {offset}) / {QUARTERS})", params

    def hour_sql(self, column: str = "bucket") -> tuple[str, list[Any]]:
        offset, params = self.offset_sql(column)
        return f"((({column} + {offset}) % {QUARTERS}) / 4)", params

    def rules(self) -> tuple[DayRule, ...]:
        return day_rules(self.zone, self.span.first, self.span.end)

    def presence_sql(self) -> tuple[str, list[Any]]:
        """A user-day row lies in the span: whole UTC days, or a mask test on the two edge days."""
        first, end = self.span.first, self.span.end
        if end <= first:
            return "1 = 0", []
        first_day, last_day = first // QUARTERS, (end - 1) // QUARTERS
        test = "((quarters_low & ?) <> 0 OR (quarters_high & ?) <> 0)"
        if first_day == last_day:
            return f"(day = ? AND {test})", [first_day, *range_bits(first % QUARTERS, end - last_day * QUARTERS)]
        head = range_bits(first % QUARTERS, QUARTERS)
        tail = range_bits(0, end - last_day * QUARTERS)
        return (
            f"((day > ? AND day < ?) OR (day = ? AND {test}) OR (day = ? AND {test}))",
            [first_day, last_day, first_day, *head, last_day, *tail],
        )

    def day_range(self) -> tuple[int, int]:
        """The UTC days the span touches, both included."""
        return self.span.first // QUARTERS, max(self.span.first, self.span.end - 1) // QUARTERS


def day_masks(zone: ZoneInfo, first: int, end: int, day: int) -> tuple[tuple[int, int], ...]:
    """UTC day `day`'s quarters inside buckets `first` to `end`, by the local day they fall in:
    the masks of local days `day - 1`, `day`, `day + 1`."""
    start_of_day = day * QUARTERS
    masks = [[0, 0], [0, 0], [0, 0]]
    segments = offsets(zone, first, max(end, first + 1))
    for n, (since, offset) in enumerate(segments):
        until = segments[n + 1][0] if n + 1 < len(segments) else end
        low, high = (
            max(since, first, start_of_day) - start_of_day,
            min(until, end, start_of_day + QUARTERS) - start_of_day,
        )
        if low >= high:
            continue
        for delta, (a, b) in enumerate(((low, -offset), (-offset, QUARTERS - offset), (QUARTERS - offset, high))):
            bits = range_bits(max(a, low), min(b, high))
            masks[delta][0] |= bits[0]
            masks[delta][1] |= bits[1]
    return tuple((m[0], m[1]) for m in masks)


@functools.lru_cache(maxsize=512)
def day_rules(zone: ZoneInfo, first: int, end: int) -> tuple[DayRule, ...]:
    """The span's UTC days with their masks, runs of equal masks merged."""
    if end <= first:
        return ()
    rules: list[DayRule] = []
    for day in range(first // QUARTERS, (end - 1) // QUARTERS + 1):
        masks = day_masks(zone, first, end, day)
        if rules and rules[-1].masks == masks and rules[-1].last_day == day - 1:
            rules[-1] = DayRule(rules[-1].first_day, day, rules[-1].masks)
        else:
            rules.append(DayRule(day, day, masks))  # type: ignore[arg-type]
    return tuple(rules)


def local_day_users_sql(
    spans: ZonedSpan, scope: str, scope_params: list[Any], key: str = "install_id"
) -> tuple[str, list[Any]]:
    """`SELECT <key>, local day number, user_id` for each user seen in each local day of the
    span (a user may come twice: count them DISTINCT). `key`: the columns that group them."""
    selects, params = [], []
    for rule in spans.rules():
        for delta, (low, high) in zip((-1, 0, 1), rule.masks, strict=True):
            if not (low or high):
                continue
            selects.append(
                f'SELECT {key}, day + {delta} AS local_day, user_id FROM "analytics_user_days" '
                f"WHERE {scope} AND day >= ? AND day <= ? AND ((quarters_low & ?) <> 0 OR (quarters_high & ?) <> 0)"
            )
            params += [*scope_params, rule.first_day, rule.last_day, low, high]
    if not selects:
        return f'SELECT {key}, 0 AS local_day, user_id FROM "analytics_user_days" WHERE 1 = 0', []
    return " UNION ALL ".join(selects), params
