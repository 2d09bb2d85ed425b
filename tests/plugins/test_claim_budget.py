"""How many inbox events a dispatcher may hold: more when it gets through them fast, never more
than it finishes in a quarter of a lease."""

from __future__ import annotations

from app.plugins.claim_budget import WINDOW_SECONDS, ClaimBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock, lease_seconds: float = 60.0) -> ClaimBudget:
    return ClaimBudget(floor=512, ceiling=2048, lease_seconds=lease_seconds, clock=clock)


def finish_for_ten_seconds(claims: ClaimBudget, clock: Clock, per_second: int) -> None:
    for _ in range(10):
        claims.finished(per_second)
        clock.now += 1


def test_a_process_that_has_finished_nothing_holds_the_floor() -> None:
    assert budget(Clock()).limit() == 512


def test_a_fast_process_holds_up_to_the_ceiling() -> None:
    clock = Clock()
    claims = budget(clock)

    finish_for_ten_seconds(claims, clock, 1000)

    assert claims.limit() == 2048


def test_the_budget_is_what_the_pace_finishes_in_a_quarter_of_the_lease() -> None:
    clock = Clock()
    claims = budget(clock, lease_seconds=60.0)

    finish_for_ten_seconds(claims, clock, 80)  # 1,200 in 15 s

    assert claims.limit() == 1200


def test_a_slow_process_never_holds_more_than_the_floor() -> None:
    clock = Clock()
    claims = budget(clock)

    finish_for_ten_seconds(claims, clock, 10)  # 150 in a quarter of the lease

    assert claims.limit() == 512


def test_a_short_lease_keeps_a_fast_process_near_the_floor() -> None:
    clock = Clock()
    claims = budget(clock, lease_seconds=4.0)

    finish_for_ten_seconds(claims, clock, 1000)  # 1,000 in one second

    assert claims.limit() == 1000


def test_a_process_that_slows_down_holds_less_once_the_fast_time_is_past() -> None:
    clock = Clock()
    claims = budget(clock)
    finish_for_ten_seconds(claims, clock, 1000)

    clock.now += WINDOW_SECONDS + 1  # nothing finished since

    assert claims.limit() == 512
