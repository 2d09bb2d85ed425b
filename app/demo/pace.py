"""How busy the demo's community is at each moment: one pace for the filled-in past and for the
live traffic, so the charts read like one community at any hour.

The pace is `rate` things a second averaged over a weekday, shaped by the hour of day (quiet
nights, a morning peak and a bigger evening one) and quieter at weekends, in the community's own
day: `offset` seconds east of UTC (the demo's community is in Delhi, +5:30, so its hours start at
half past a UTC hour). Things happen as a Poisson process whose rate is constant within each local
hour; the same generator makes the past (driven quickly through its moments) and the present
(waited for, moment by moment).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

# Relative activity by local hour: quiet nights, a morning peak and a bigger evening one.
HOUR_WEIGHTS = (
    1,
    1,
    1,
    1,
    1,
    2,
    3,
    5,
    8,
    10,
    10,
    9,
    8,
    9,
    9,
    8,
    8,
    9,
    11,
    12,
    11,
    8,
    5,
    2,
)
WEEKEND_FACTOR = 0.7  # local Saturdays and Sundays
HOUR = 3600
DAY = 86400
_MEAN_WEIGHT = sum(HOUR_WEIGHTS) / len(HOUR_WEIGHTS)


def is_weekend(at: float) -> bool:
    """Whether `at` (Unix time, shifted to a zone's wall clock) falls on a Saturday or Sunday."""
    return (int(at // DAY) + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)


@dataclass(frozen=True)
class Pace:
    rate: float  # things a second, averaged over a weekday
    offset: int = 0  # the community's zone: seconds east of UTC (a zone without daylight saving)

    def per_second(self, at: float) -> float:
        """The rate things happen at, at Unix time `at` (constant within its local hour)."""
        local = at + self.offset
        hour = int(local % DAY // HOUR)
        factor = WEEKEND_FACTOR if is_weekend(local) else 1.0
        return self.rate * factor * HOUR_WEIGHTS[hour] / _MEAN_WEIGHT

    def hour_end(self, at: float) -> float:
        """When the local hour of `at` ends (Unix time)."""
        return ((at + self.offset) // HOUR + 1) * HOUR - self.offset

    def busiest(self) -> float:
        return self.rate * max(HOUR_WEIGHTS) / _MEAN_WEIGHT

    def quietest(self) -> float:
        return self.rate * WEEKEND_FACTOR * min(HOUR_WEIGHTS) / _MEAN_WEIGHT

    def expected(self, start: float, end: float) -> float:
        """How many things happen between `start` and `end`, on average."""
        total, at = 0.0, start
        while at < end:
            boundary = min(end, self.hour_end(at))
            total += self.per_second(at) * (boundary - at)
            at = boundary
        return total

    def moments(self, start: float, rng: random.Random) -> Iterator[float]:
        """The moments things happen after `start`, in order, for ever. Within an hour the gaps are
        exponential at that hour's rate; a gap that crosses into the next hour starts again there at
        the new rate (a Poisson process forgets how long it has waited)."""
        at = start
        while True:
            boundary = self.hour_end(at)
            at += rng.expovariate(self.per_second(at))
            if at >= boundary:
                at = boundary
                continue
            yield at


class Schedule:
    """A pace's moments from `start` on, handed out in order up to a clock's time: the past is
    taken all at once, the present as the clock reaches each moment."""

    def __init__(self, pace: Pace, start: float, rng: random.Random) -> None:
        self.pace = pace
        self._moments = pace.moments(start, rng)
        self.next = next(self._moments)

    def until(self, end: float) -> Iterator[float]:
        """The moments up to `end` not handed out yet."""
        while self.next <= end:
            at, self.next = self.next, next(self._moments)
            yield at
