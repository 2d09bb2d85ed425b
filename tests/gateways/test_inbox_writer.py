"""The inbox's group commit: rows the database itself refuses are found, the rest of their group
is committed, and each caller hears of its own row. Old rejected updates are pruned with the
rest of the history."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from app.clock import utcnow
from app.gateways import inbox
from app.gateways.inbox_writer import InboxUnavailable, InboxWriter, RowRefused, reject
from app.gateways.models import EventKind, EventStatus, GatewayEvent, RejectedUpdate
from tests.support.eventually import eventually
from tests.support.live import LiveApp
from tests.support.outage import sqlite_locked
from tests.support.runtime import ConnectedBot, connect_bot

MARKER = "row-value-marker"  # in every refused row's values, never in a reason


@pytest.fixture
async def live(make_app) -> LiveApp:
    return await make_app(handlers=[], inbox_concurrency=0)  # rows are looked at, not processed


@pytest.fixture
async def bot(live: LiveApp, telegram) -> ConnectedBot:
    owner = await live.create_user("owner@example.com", "pro")
    return await connect_bot(live, owner, telegram)


def refused_rows(gateway_id: str) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Rows that pass no door (they go to the writer directly): name -> (row, backends refusing it)."""
    payload = '{"text":"%s"}' % MARKER
    both, postgres = {"sqlite", "postgres"}, {"postgres"}
    return {
        "chat id beyond 64 bits": ({"chat_id": 2**70, "payload": payload}, both),
        "unpaired surrogate in the key": ({"key": f"{MARKER}\ud800", "payload": payload}, both),
        "unpaired surrogate in the payload": ({"payload": '{"text":"%s\ud800"}' % MARKER}, both),
        "gateway that does not exist": ({"gateway_id": "0" * 32, "payload": payload}, both),
        "NUL escape in the payload": ({"payload": '{"text":"%s\\u0000"}' % MARKER}, postgres),
        "lone surrogate escape in the payload": ({"payload": '{"text":"%s\\udc00"}' % MARKER}, postgres),
        "key longer than its column": ({"key": MARKER * 5, "payload": payload}, postgres),
        "number jsonb cannot hold": ({"payload": '{"text":"%s","n":1e-20000}' % MARKER}, postgres),
    }


async def test_refused_rows_fail_alone_and_the_rest_of_their_group_commits(live, bot, backend):
    writer = InboxWriter()
    bad = refused_rows(bot.gateway_id)
    calls: list[tuple[str, dict[str, Any]]] = [
        (f"good-{n}", {"key": f"good-{n}", "payload": '{"n":%d}' % n, "chat_id": -n}) for n in range(200)
    ]
    for position, (name, (row, _)) in enumerate(bad.items()):
        calls.insert(position * 25 + 7, (name, {"key": name[:60], **row}))

    with live.db():
        tasks = [
            asyncio.create_task(
                writer.put(
                    row.get("gateway_id", bot.gateway_id),
                    EventKind.UPDATE,
                    row["key"],
                    row["payload"],
                    row.get("chat_id"),
                )
            )
            for _, row in calls
        ]
        await asyncio.sleep(0)  # every row is queued before the writer starts: one group
        writer.start()
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await writer.stop()
        stored = set(await GatewayEvent.all().values_list("key", flat=True))

    outcome = {name: result for (name, _), result in zip(calls, results)}
    for name, (row, refusing) in bad.items():
        if backend in refusing:
            assert isinstance(outcome[name], RowRefused), (name, outcome[name])
            assert outcome[name].reason and MARKER not in outcome[name].reason  # the reason, never the value
            assert row.get("key", name[:60]) not in stored
        else:
            assert outcome[name] is None, (name, outcome[name])
            assert row.get("key", name[:60]) in stored
    good = [name for name, _ in calls if name.startswith("good-")]
    assert all(outcome[name] is None for name in good)
    assert set(good) <= stored


async def test_a_redelivered_row_in_a_group_with_a_refused_one_is_kept_once(live, bot):
    writer = InboxWriter()
    with live.db():
        rows = [("same", None), ("same", None), ("other", 2**70), ("same", None)]
        tasks = [
            asyncio.create_task(writer.put(bot.gateway_id, EventKind.UPDATE, key, '{"n":1}', chat_id))
            for key, chat_id in rows
        ]
        await asyncio.sleep(0)
        writer.start()
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await writer.stop()
        keys = await GatewayEvent.all().values_list("key", flat=True)
    assert [r is None for r in results] == [True, True, False, True]
    assert keys == ["same"]


async def test_old_rejected_updates_are_pruned_with_finished_events(live, bot):
    now = utcnow()
    with live.db():
        for age_hours, label in ((50, "old"), (1, "recent")):
            await reject(bot.gateway_id, label, "a reason", b'{"update_id":1}')
            await RejectedUpdate.filter(update_id=label).update(received_at=now - timedelta(hours=age_hours))
        old_event = await GatewayEvent.create(
            gateway_id=bot.gateway_id, kind=EventKind.UPDATE, key="1", payload={}, status=EventStatus.DONE
        )
        await GatewayEvent.filter(id=old_event.id).update(received_at=now - timedelta(hours=50))

        pruned = await inbox.prune(now - timedelta(hours=48))

        assert pruned == 2
        assert await RejectedUpdate.all().values_list("update_id", flat=True) == ["recent"]
        assert await GatewayEvent.all().count() == 0


async def test_a_stopped_writer_leaves_nobody_waiting(live, bot):
    writer = InboxWriter()
    with live.db():
        waiting = asyncio.create_task(writer.put(bot.gateway_id, EventKind.UPDATE, "1", '{"n":1}'))
        await asyncio.sleep(0)  # queued, never written: the writer is not running
        await writer.stop()
        with pytest.raises(InboxUnavailable):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(InboxUnavailable):
            await writer.put(bot.gateway_id, EventKind.UPDATE, "2", '{"n":2}')
        assert await GatewayEvent.all().count() == 0


async def test_stopping_answers_callers_whose_group_still_waits_for_the_database(make_app, bot, backend, database_url):
    if backend != "sqlite":
        pytest.skip("the SQLite writer's own thread")
    # Its writes would wait for the lock far longer than the test runs: only stopping can answer.
    patient = await make_app(handlers=[], inbox_concurrency=0, database_url=f"{database_url}?busy_timeout=3600000")
    writer = InboxWriter()
    with patient.db():
        writer.start()
        try:
            async with sqlite_locked(database_url):
                waiting = asyncio.create_task(writer.put(bot.gateway_id, EventKind.UPDATE, "1", '{"n":1}'))
                thread = writer.group.thread
                assert thread is not None
                await eventually(
                    lambda: thread.writing, "the writer's thread taking the row"
                )  # and waiting for the lock
                assert not waiting.done()
                await writer.stop()
                with pytest.raises(InboxUnavailable):
                    await waiting  # while the lock is still held
        finally:
            await writer.stop()
