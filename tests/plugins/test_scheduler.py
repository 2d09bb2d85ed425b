"""schedule.trigger: each tick fires once, however many processes share the database, and a tick
the database could not take is not lost."""

from __future__ import annotations

from typing import Any

import pytest

from app.db_errors import is_unavailable
from app.plugins.contract import PluginContext, PluginEvent, Schedule
from app.plugins.models import RunRecord, ScheduleTick
from tests.support.outage import (
    allow_connections,
    database_down,
    refuse_connections,
    short_busy_timeout,
)
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import connect_bot, install, stored


async def test_a_tick_fires_once_across_two_processes(make_app, telegram):
    first_plugin = RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))
    second_plugin = RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))
    first = await make_app(handlers=[first_plugin])
    second = await make_app(handlers=[second_plugin])
    owner = await first.create_user("sched@example.com", "pro")
    await connect_bot(first, owner, telegram)
    installed = await install(first, owner, "recorder")

    now = 1_800_000_000.0
    with first.db():
        fired_first = await first.platform.scheduler.fire_due(now)
    with second.db():
        fired_second = await second.platform.scheduler.fire_due(now + 1)

    assert (fired_first, fired_second) == (1, 0)
    assert len(first_plugin.seen) + len(second_plugin.seen) == 1
    assert first_plugin.seen[0].type == "schedule.trigger"
    assert await stored(first, installed.id, "seen:schedule.trigger") == 1

    with second.db():
        assert await second.platform.scheduler.fire_due(now + 60) == 1  # the next tick
    assert len(second_plugin.seen) == 1


async def test_a_schedule_skips_users_without_the_required_gateway(make_app):
    plugin = RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))
    live = await make_app(handlers=[plugin])
    owner = await live.create_user("nogateway@example.com", "pro")
    await install(live, owner, "recorder")
    with live.db():
        assert await live.platform.scheduler.fire_due(1_800_000_000.0) == 1
    assert plugin.seen == []


async def test_a_schedule_with_pending_work_runs_only_the_installs_it_names(make_app, telegram):
    wanted: list[str] = []
    asked: list[float] = []

    async def pending(fired_at: Any) -> list[str]:
        asked.append(fired_at.timestamp())
        return list(wanted)

    plugin = RecordingPlugin(schedules=(Schedule("digest", every_seconds=60, pending=pending),))
    live = await make_app(handlers=[plugin])
    installs = []
    for email in ("first@example.com", "second@example.com"):
        owner = await live.create_user(email, "pro")
        await connect_bot(live, owner, telegram)
        installs.append(await install(live, owner, "recorder"))

    now = 1_800_000_000.0
    with live.db():
        assert await live.platform.scheduler.fire_due(now) == 1  # fired: nothing pending, no run
        assert await RunRecord.filter(schedule="digest").count() == 0
        wanted.append(installs[1].id)
        assert await live.platform.scheduler.fire_due(now + 60) == 1
        ran = await RunRecord.filter(schedule="digest").values_list("install_id", flat=True)
    assert ran == [installs[1].id]
    assert len(plugin.seen) == 1
    assert asked == [now // 60 * 60, (now + 60) // 60 * 60]  # once a tick, with the tick's instant


async def test_a_tick_the_database_could_not_take_fires_once_it_is_back(make_app, telegram, faulty_database_url):
    plugin = RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))
    live = await make_app(handlers=[plugin], database_url=faulty_database_url)
    with live.db() as db:
        await short_busy_timeout(db)
    owner = await live.create_user("down@example.com", "pro")
    await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "recorder")
    scheduler = live.platform.scheduler

    now = 1_800_000_000.0
    async with database_down(faulty_database_url):
        with live.db(), pytest.raises(Exception) as failure:
            await scheduler.fire_due(now)
    assert is_unavailable(failure.value)
    assert plugin.seen == []

    with live.db():
        assert await scheduler.fire_due(now + 1) == 1  # the same tick, not lost
        assert await scheduler.fire_due(now + 2) == 0
        assert await ScheduleTick.all().count() == 1
    assert len(plugin.seen) == 1
    assert await stored(live, installed.id, "seen:schedule.trigger") == 1


class CutOffPlugin(RecordingPlugin):
    """Its first scheduled run takes the database away (as a failover would, mid-run)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(schedules=(Schedule("digest", every_seconds=60),))
        self.database_url = database_url
        self.runs = 0

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        self.runs += 1
        if self.runs == 1:
            await refuse_connections(self.database_url)
        return await super().on_event(event, ctx)


async def test_a_tick_cut_off_by_an_outage_is_routed_again_and_its_run_recorded_once(
    backend, make_app, telegram, faulty_database_url
):
    if backend != "postgres":
        pytest.skip("needs a database that can refuse connections mid-run")
    plugin = CutOffPlugin(faulty_database_url)
    live = await make_app(handlers=[plugin], database_url=faulty_database_url)
    owner = await live.create_user("cut@example.com", "pro")
    await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "recorder")
    scheduler = live.platform.scheduler

    now = 1_800_000_000.0
    with live.db(), pytest.raises(Exception) as failure:
        await scheduler.fire_due(now)  # claimed, then the run's record cannot be written
    assert is_unavailable(failure.value)
    await allow_connections(faulty_database_url)

    with live.db():
        assert await scheduler.fire_due(now + 1) == 0  # nothing new: the cut tick is routed again
        runs = await RunRecord.filter(install_id=installed.id).values_list("event_key", "success")
        assert await ScheduleTick.all().count() == 1
    assert plugin.runs == 2
    assert runs == [(f"schedule:digest:{int(now // 60)}", True)]
    assert await stored(live, installed.id, "seen:schedule.trigger") == 1

    with live.db():
        assert await scheduler.fire_due(now + 2) == 0
    assert plugin.runs == 2
