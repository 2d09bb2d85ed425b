"""The buckets a summary's window covers: the one place a window of days becomes a Span."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from app.analytics.buckets import Span, days_span
from app.analytics.reader import Window

UTC_ZONE = ZoneInfo("UTC")


def window_span(window: Window, zone: ZoneInfo) -> Span:
    """The buckets of the window's days, `start` to `end` included, as days in `zone`."""
    return days_span(window.start, window.end, zone)
