"""The grain analytics counts are stored at: 15-minute UTC buckets.

Every zone in use today is offset from UTC by whole quarters of an hour (Asia/Kolkata +5:30,
Asia/Kathmandu +5:45), and changes its offset on a quarter too. So any zone's days and hours
are exact sums of buckets, and changing an install's zone re-reads history without a recount.
A bucket is a plain integer: seconds since the epoch divided by 900, so ranges are `>=` and `<`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BUCKET_SECONDS = 900
BUCKETS_PER_HOUR = 4


def bucket_of(moment: datetime) -> int:
    """The bucket an instant falls in; a naive datetime is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) // BUCKET_SECONDS


def bucket_start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * BUCKET_SECONDS, UTC)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError when the zone database has no such zone."""
    if not name or len(name) > 64 or name != name.strip() or name.startswith("/") or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant `day` begins in `zone`. Where midnight is skipped by a clock change, the day
    begins when the clock jumps (zoneinfo reads a missing time with the offset before the change);
    where midnight happens twice, at the first."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Span:
    """The buckets `first` to `end`, `end` excluded."""

    first: int
    end: int

    def __len__(self) -> int:
        return max(0, self.end - self.first)


def days_span(start: date, end: date, zone: ZoneInfo) -> Span:
    """The buckets of the local days `start` to `end` in `zone`, both included (a 23- or 25-hour day
    has 92 or 100 buckets)."""
    return Span(bucket_of(local_midnight(start, zone)), bucket_of(local_midnight(end + timedelta(days=1), zone)))


def local_days(start: date, end: date, zone: ZoneInfo) -> list[tuple[date, Span]]:
    """Each local day from `start` to `end` with its buckets, oldest first."""
    days = []
    first = bucket_of(local_midnight(start, zone))
    day = start
    while day <= end:
        following = day + timedelta(days=1)
        next_first = bucket_of(local_midnight(following, zone))
        days.append((day, Span(first, next_first)))
        day, first = following, next_first
    return days


def local_date(bucket: int, zone: ZoneInfo) -> date:
    return bucket_start(bucket).astimezone(zone).date()


def local_hour(bucket: int, zone: ZoneInfo) -> int:
    return bucket_start(bucket).astimezone(zone).hour


def today_in(zone: ZoneInfo, now: datetime) -> date:
    return now.astimezone(zone).date()
