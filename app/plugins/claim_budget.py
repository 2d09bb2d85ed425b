"""How many inbox events a dispatcher holds claimed at once.

A claim and a commit each cost a round of statements whatever their size, so a worker with a
backlog gets through it faster the more events it holds (bigger claims, bigger group commits). But
a claimed event waits in its lane until the events before it are done, and its lease does not
wait: a process must never hold more than it finishes well within a lease, or another process
claims the tail again. The budget grows with what the process was seen to finish.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 10.0  # the pace is what was finished over this long
LEASE_SHARE = 0.25  # never hold more than the pace finishes in this share of a lease


class ClaimBudget:
    def __init__(
        self,
        floor: int,
        ceiling: int,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.floor = floor  # held whatever the pace (also before any is known)
        self.ceiling = max(floor, ceiling)
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._finished: deque[tuple[float, int]] = deque()  # (when, how many)
        self._in_window = 0

    def finished(self, count: int) -> None:
        """This process got through `count` events (recorded, failed, or left to a retry)."""
        now = self._clock()
        self._finished.append((now, count))
        self._in_window += count
        self._forget_before(now - WINDOW_SECONDS)

    def limit(self) -> int:
        """The events this process may hold now."""
        self._forget_before(self._clock() - WINDOW_SECONDS)
        affordable = int(self._in_window / WINDOW_SECONDS * self.lease_seconds * LEASE_SHARE)
        return min(self.ceiling, max(self.floor, affordable))

    def _forget_before(self, start: float) -> None:
        while self._finished and self._finished[0][0] < start:
            self._in_window -= self._finished.popleft()[1]
