"""The buckets a summary's window covers (the one place a window of days becomes a Span), and the
first bucket retention keeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from app.analytics.buckets import Span, bucket_of, days_span
from app.analytics.reader import Window

UTC_ZONE = ZoneInfo("UTC")


def window_span(window: Window, zone: ZoneInfo) -> Span:
    """The buckets of the window's days, `start` to `end` included, as days in `zone`."""
    return days_span(window.start, window.end, zone)


def first_kept_bucket(keep_from: date) -> int:
    """The first bucket of the UTC date `keep_from`, from which retention keeps figures."""
    return bucket_of(datetime.combine(keep_from, time(), tzinfo=UTC))
