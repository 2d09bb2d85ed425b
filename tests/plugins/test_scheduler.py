"""schedule.trigger: each tick fires once, however many processes share the database."""

from __future__ import annotations

from app.plugins.contract import Schedule
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
