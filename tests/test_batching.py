"""The group commit that the inbox and the run recorder share: callers' items are committed together,
a refused item fails alone, an unavailable database fails the group, and stopping answers everyone.
The databases' side is in tests/gateways/test_inbox_writer.py and tests/plugins/test_flapping_database.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.batching import Failures, GroupCommit


class Refused(Exception):
    pass


class Unavailable(Exception):
    pass


class Stopping(Exception):
    pass


FAILURES = Failures(
    refused=lambda exc: Refused(str(exc)) if isinstance(exc, ValueError) else None,
    unavailable=lambda exc, count: Unavailable(f"{count}: {exc}"),
    stopping=lambda: Stopping("stopping"),
)


class Database:
    """Commits strings; refuses a group holding "bad…" (ValueError); fails while `down`."""

    def __init__(self) -> None:
        self.commits: list[list[str]] = []
        self.stored: list[str] = []
        self.down = False
        self.hold: asyncio.Event | None = None  # commits wait for it when set
        self.entered = asyncio.Event()

    async def commit(self, items: list[str]) -> Sequence[str]:
        self.commits.append(list(items))
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.down:
            raise ConnectionError("the database went away")
        if any(item.startswith("bad") for item in items):
            raise ValueError("a value it cannot hold")
        self.stored += items
        return [item.upper() for item in items]


async def put_all(group: GroupCommit[str, str], items: list[str]) -> list[asyncio.Task[str]]:
    tasks = [asyncio.create_task(group.put(item)) for item in items]
    await asyncio.sleep(0)  # every put queued: the writer has not started
    return tasks


async def test_items_queued_together_are_committed_in_one_call_and_each_caller_gets_its_result():
    db = Database()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=100)
    tasks = await put_all(group, ["a", "b", "c"])
    group.start()
    try:
        assert await asyncio.gather(*tasks) == ["A", "B", "C"]
    finally:
        await group.stop()
    assert db.commits == [["a", "b", "c"]]


async def test_a_refused_item_fails_alone_and_the_rest_of_its_group_is_committed():
    db = Database()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=100)
    items = [f"good-{n}" for n in range(16)]
    items.insert(5, "bad-1")
    items.insert(12, "bad-2")
    tasks = await put_all(group, items)
    group.start()
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await group.stop()
    outcome = dict(zip(items, results, strict=True))
    assert isinstance(outcome.pop("bad-1"), Refused)
    assert isinstance(outcome.pop("bad-2"), Refused)
    assert outcome == {item: item.upper() for item in outcome}
    assert sorted(db.stored) == sorted(outcome)
    assert len(db.commits) < 2 * len(items)  # halving, not one commit per item


async def test_an_unavailable_database_fails_every_caller_of_the_group_with_its_own_error():
    db = Database()
    db.down = True
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=100)
    tasks = await put_all(group, ["a", "bad", "c"])
    group.start()
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await group.stop()
    assert [type(result) for result in results] == [Unavailable] * 3
    assert str(results[0]).startswith("3: ")
    assert db.commits == [["a", "bad", "c"]]  # not split: the group is not at fault


async def test_a_group_holds_up_to_max_group_by_weight_and_a_heavy_item_goes_alone():
    db = Database()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=4, weigh=len)
    tasks = await put_all(group, ["a", "bb", "c", "dddddd", "e"])
    group.start()
    try:
        await asyncio.gather(*tasks)
    finally:
        await group.stop()
    assert db.commits == [["a", "bb", "c"], ["dddddd"], ["e"]]


async def test_up_to_max_in_flight_groups_commit_at_once():
    db = Database()
    db.hold = asyncio.Event()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=1, max_in_flight=2)
    group.start()
    try:
        tasks = [asyncio.create_task(group.put(item)) for item in "abc"]
        while len(db.commits) < 2:
            db.entered.clear()
            await db.entered.wait()
        await asyncio.sleep(0)
        assert db.commits == [["a"], ["b"]]  # the third waits for a slot
        db.hold.set()
        assert await asyncio.gather(*tasks) == ["A", "B", "C"]
    finally:
        await group.stop()


async def test_a_caller_that_went_away_is_left_out_of_its_group():
    db = Database()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=100)
    tasks = await put_all(group, ["a", "gone", "c"])
    tasks[1].cancel()
    await asyncio.sleep(0)
    group.start()
    try:
        assert await asyncio.gather(tasks[0], tasks[2]) == ["A", "C"]
    finally:
        await group.stop()
    assert db.commits == [["a", "c"]]


async def test_stopping_answers_whoever_waits_and_refuses_new_items():
    db = Database()
    db.hold = asyncio.Event()
    group: GroupCommit[str, str] = GroupCommit("test", db.commit, FAILURES, max_group=1)
    group.start()
    committing = asyncio.create_task(group.put("a"))
    await db.entered.wait()
    queued = asyncio.create_task(group.put("b"))
    await asyncio.sleep(0)
    await group.stop()
    for task in (committing, queued):
        with pytest.raises(Stopping):
            await task
    with pytest.raises(Stopping):
        await group.put("c")
    assert db.stored == []
