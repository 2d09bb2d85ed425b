"""Background tasks never die silently: a crashed loop is logged and started again, a failed
one-off task is logged the moment it ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.supervision import Heartbeat, cancel, spawn, start_supervised


async def test_a_loop_that_crashes_is_logged_and_started_again(caplog):
    caplog.set_level(logging.ERROR, logger="app.supervision")
    runs = 0
    running_again = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("boom")
        running_again.set()
        await asyncio.Event().wait()

    task = start_supervised("test-loop", loop)
    await asyncio.wait_for(running_again.wait(), 10)
    await cancel([task])

    assert runs == 2
    [record] = [r for r in caplog.records if r.name == "app.supervision"]
    assert record.getMessage().startswith("test-loop crashed; starting it again")
    assert record.exc_info is not None and record.exc_info[1].args == ("boom",)
    assert task.cancelled()


async def test_a_one_off_task_that_fails_is_logged_when_it_ends(caplog):
    caplog.set_level(logging.ERROR, logger="app.supervision")

    async def fails() -> None:
        raise ValueError("lost")

    task = spawn(fails(), "one-off")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # done-callbacks run on the next turn of the loop

    [record] = [r for r in caplog.records if r.name == "app.supervision"]
    assert record.getMessage() == "background task one-off failed"
    assert record.exc_info is not None and record.exc_info[1].args == ("lost",)


class Clock:
    """time.monotonic as app.supervision sees it, moved on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_heartbeat_is_stalled_once_its_last_beat_is_older_than_its_limit(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("app.supervision.time", clock)
    heartbeat = Heartbeat("loop", stale_after=5)
    clock.now += 5
    assert not heartbeat.stalled()
    clock.now += 0.1
    assert heartbeat.stalled()
    assert heartbeat.age() == pytest.approx(5.1)
    heartbeat.beat()
    assert not heartbeat.stalled()
    assert heartbeat.age() == 0
