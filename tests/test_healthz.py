"""GET /healthz: 200 while the database answers and every background loop this process runs
beats; otherwise 503, with a body naming what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.gateways.models import EventStatus, GatewayEvent
from app.plugins.contract import Schedule
from tests.support.eventually import eventually
from tests.support.outage import database_locked, short_busy_timeout, wait_for_health
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import connect_bot, install, stored, wait_until_processed
from tests.support.telegram_updates import message_update


async def test_healthz_names_the_database_and_each_loop_it_runs(make_app):
    live = await make_app(
        handlers=[RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))], scheduler_enabled=True
    )
    response = await live.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "dispatcher": "ok",
        "scheduler": "ok",
        "gateway-monitor": "ok",
    }


async def test_loops_a_process_does_not_run_are_never_reported_stuck(make_app):
    # An ingest-only server: no dispatcher (INBOX_CONCURRENCY=0) and no scheduler.
    live = await make_app(
        handlers=[RecordingPlugin(schedules=(Schedule("digest", every_seconds=60),))],
        inbox_concurrency=0,
        scheduler_enabled=False,
        inbox_poll_seconds=0.05,
        scheduler_tick_seconds=0.05,
        plugin_timeout_seconds=0.1,
        heartbeat_grace_seconds=0.05,
    )
    loops = (live.platform.dispatcher, live.platform.scheduler)
    # Their heartbeats, never beaten, are long past what a running loop may go without a beat.
    await eventually(lambda: all(loop.heartbeat.stalled() for loop in loops), "the idle loops' heartbeats going stale")
    response = await live.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_a_dispatcher_stuck_on_the_database_makes_healthz_503_naming_it(make_app, telegram, database_url):
    recorder = RecordingPlugin()
    live = await make_app(handlers=[recorder], heartbeat_grace_seconds=0.5)
    with live.db() as db:
        await short_busy_timeout(db)
    owner = await live.create_user("stuck@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "recorder")
    assert (await live.http.get("/healthz")).status_code == 200
    # An event of a process that died: its lease runs out in a moment, and claiming it must write.
    with live.db():
        await GatewayEvent.create(
            gateway_id=bot.gateway_id,
            kind="update",
            key="1",
            chat_id=-1,
            payload=message_update(1, chat_id=-1),
            status=EventStatus.PROCESSING,
            attempts=1,
            claim="gone",
            lease_until=datetime.now(UTC) + timedelta(seconds=3),
        )

    # PostgreSQL: claiming waits on the locked table. SQLite: claiming fails as locked, again and again.
    async with database_locked(database_url, "gateway_events"):
        body = await wait_for_health(live.http, 503)
        assert body["status"] == "unavailable"
        assert body["stalled"] == ["dispatcher"]
        assert body["dispatcher"].startswith("stalled: no heartbeat for")
        assert body["database"] == "ok"  # `SELECT 1` still answers: only the heartbeat tells

    assert await wait_for_health(live.http, 200) == {
        "status": "ok",
        "database": "ok",
        "dispatcher": "ok",
        "gateway-monitor": "ok",
    }
    await wait_until_processed(live)
    assert await stored(live, installed.id, "seen:telegram.message") == 1


async def test_a_scheduler_stuck_on_the_database_makes_healthz_503_naming_it(make_app, database_url):
    live = await make_app(
        handlers=[RecordingPlugin(schedules=(Schedule("often", every_seconds=1),))],
        scheduler_enabled=True,
        scheduler_tick_seconds=0.2,
        plugin_timeout_seconds=1,
        heartbeat_grace_seconds=0.5,
    )
    with live.db() as db:
        await short_busy_timeout(db)
    await wait_for_health(live.http, 200)

    async with database_locked(database_url, "schedule_ticks"):
        body = await wait_for_health(live.http, 503)
        assert body["stalled"] == ["scheduler"]
        assert body["dispatcher"] == "ok"

    await wait_for_health(live.http, 200)
