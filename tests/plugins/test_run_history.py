"""The run history: every run of an install, for an event or a schedule, is kept with its event
(kind and chat), outcome, error and duration, until RUN_HISTORY_DAYS have passed (never before
the inbox events it deduplicates are pruned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.plugins.contract import Schedule
from app.plugins.models import RunOutcome, RunRecord
from tests.support.eventually import eventually
from tests.support.flaky import FlakyPlugin
from tests.support.installs_api import install_via_api, my_install, runs_of
from tests.support.live import LiveApp
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import connect_bot, deliver, stored, wait_until_processed
from tests.support.telegram_updates import callback_update, message_update


def parsed(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


async def test_each_run_is_kept_with_its_event_outcome_error_and_duration(make_app, telegram):
    flaky, recorder = FlakyPlugin(), RecordingPlugin()
    live = await make_app(handlers=[flaky, recorder])
    owner = await live.create_user("history@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    failing = await install_via_api(live, owner, "flaky")
    await install_via_api(live, owner, "recorder")
    flaky.failing_for.add(owner.id)
    before = datetime.now(UTC)

    assert (await deliver(live, bot, message_update(1, text="hello", chat_id=-7))).status_code == 200
    await wait_until_processed(live)

    [succeeded] = await runs_of(live, owner, "recorder")
    assert succeeded["outcome"] == "SUCCEEDED"
    assert (succeeded["trigger"], succeeded["eventType"], succeeded["chatId"]) == ("EVENT", "telegram.message", "-7")
    assert succeeded["eventLabel"] == "Message"  # the words the web app shows, from the server
    assert (succeeded["error"], succeeded["retryOf"], succeeded["canRetry"]) == (None, None, False)
    assert (succeeded["schedule"], succeeded["firedAt"]) == (None, None)
    assert succeeded["durationMs"] >= 0
    assert before <= parsed(succeeded["createdAt"]) <= datetime.now(UTC)

    [failed] = await runs_of(live, owner, "flaky")
    assert failed["outcome"] == "FAILED"
    assert (failed["trigger"], failed["eventType"], failed["chatId"]) == ("EVENT", "telegram.message", "-7")
    assert failed["error"] == "RuntimeError: flaky failure on 'hello'"
    assert failed["canRetry"] is True
    # A failed run's writes never land; its failure shows on the install too.
    assert await stored(live, failing["id"], "done") is None
    install = await my_install(live, owner, "flaky")
    assert (install["executionCount"], install["lastError"]) == (1, "RuntimeError: flaky failure on 'hello'")


async def test_each_kind_of_event_is_recorded_as_its_own_type(make_app, telegram):
    live = await make_app(handlers=[RecordingPlugin()])
    owner = await live.create_user("kinds@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "recorder")

    await deliver(live, bot, message_update(1, chat_id=-1))
    await wait_until_processed(live)
    await deliver(live, bot, callback_update(2, chat_id=-2))
    await wait_until_processed(live)

    runs = await runs_of(live, owner, "recorder")
    assert [(r["eventType"], r["chatId"], r["outcome"]) for r in runs] == [
        ("telegram.callback", "-2", "SUCCEEDED"),
        ("telegram.message", "-1", "SUCCEEDED"),
    ]


async def test_an_update_telegram_sends_twice_is_run_and_recorded_once(make_app, telegram):
    flaky = FlakyPlugin()
    live = await make_app(handlers=[flaky])
    owner = await live.create_user("twice@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    update = message_update(1, text="once")

    for _ in range(2):
        assert (await deliver(live, bot, update)).status_code == 200
        await wait_until_processed(live)

    assert [call.text for call in flaky.calls] == ["once"]
    assert len(await runs_of(live, owner, "flaky")) == 1


async def test_a_run_records_id_begins_with_the_millisecond_its_run_was_made_in(make_app, telegram):
    # So the records are added at the end of their primary key's index (app/ids.py: new_ordered_id).
    live = await make_app(handlers=[RecordingPlugin()])
    owner = await live.create_user("ordered@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "recorder")
    before = datetime.now(UTC)

    for update_id in (1, 2):
        assert (await deliver(live, bot, message_update(update_id, text="hi"))).status_code == 200
    await wait_until_processed(live)

    after = datetime.now(UTC)

    with live.db():
        records = await RunRecord.all().order_by("id")
    assert len(records) == 2
    for record in records:
        made = datetime.fromtimestamp(int(record.id[:12], 16) / 1000, UTC)  # to the millisecond, rounded down
        assert before - timedelta(milliseconds=1) <= made <= after


async def test_a_schedule_run_is_kept_with_its_schedule_and_when_it_fired(make_app, telegram):
    flaky = FlakyPlugin(schedules=(Schedule("digest", every_seconds=60),))
    live = await make_app(handlers=[flaky])
    owner = await live.create_user("digest@example.com", "pro")
    await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")

    with live.db():
        assert await live.platform.scheduler.fire_due(1_800_000_030.0) == 1

    [run] = await runs_of(live, owner, "flaky")
    assert (run["trigger"], run["eventType"], run["eventLabel"], run["outcome"]) == (
        "SCHEDULE",
        "schedule.trigger",
        "Schedule",
        "SUCCEEDED",
    )
    assert (run["schedule"], parsed(run["firedAt"])) == ("digest", datetime.fromtimestamp(1_800_000_000, UTC))
    assert run["chatId"] is None


async def old_runs(app: LiveApp, install_id: str, ages: dict[str, timedelta]) -> None:
    """Runs of the install as if recorded `age` ago, keyed by name."""
    now = datetime.now(UTC)
    with app.db():
        for key, age in ages.items():
            run = await RunRecord.create(
                install_id=install_id, event_key=key, success=True, outcome=RunOutcome.SUCCEEDED, duration_ms=1
            )
            await RunRecord.filter(id=run.id).update(created_at=now - age)


async def kept(app: LiveApp, install_id: str) -> list[str]:
    with app.db():
        return sorted(
            str(key) for key in await RunRecord.filter(install_id=install_id).values_list("event_key", flat=True)
        )


async def test_runs_past_the_retention_are_pruned_but_never_before_the_events_they_deduplicate(make_app, telegram):
    setup = await make_app(handlers=[FlakyPlugin()], inbox_concurrency=0)  # prunes nothing
    owner = await setup.create_user("old@example.com", "pro")
    await connect_bot(setup, owner, telegram)
    installed = await install_via_api(setup, owner, "flaky")
    ages = {"1h": timedelta(hours=1), "30h": timedelta(hours=30), "3d": timedelta(days=3), "10d": timedelta(days=10)}
    await old_runs(setup, installed["id"], ages)

    week = await make_app(handlers=[FlakyPlugin()], run_history_days=7, inbox_retention_hours=48)
    await eventually(lambda: _without(week, installed["id"], "10d"), what="runs older than 7 days pruned")
    assert await kept(week, installed["id"]) == ["1h", "30h", "3d"]
    await week.stop()

    # One day of history, but inbox events are kept 48 hours: runs are kept as long as those.
    day = await make_app(handlers=[FlakyPlugin()], run_history_days=1, inbox_retention_hours=48)
    await eventually(lambda: _without(day, installed["id"], "3d"), what="runs older than 48 hours pruned")
    assert await kept(day, installed["id"]) == ["1h", "30h"]


async def _without(app: LiveApp, install_id: str, key: str) -> bool:
    return key not in await kept(app, install_id)


CHAT_RUNS = """{ myPlugins { plugin { slug } runs(first: 10) { nodes { id chatId chatTitle } } } }"""


async def test_a_run_names_its_chat_as_channel_analytics_saw_it(make_app, telegram):
    """The runs page shows chats by name where the analytics widget does: the title comes from the
    owner's own Channel Analytics, and is null where it has not counted that chat (here: not installed)."""
    live = await make_app()
    owner = await live.create_user("titles@example.com", "pro")
    other = await live.create_user("other@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    others_bot = await connect_bot(live, other, telegram)
    for user in (owner, other):
        await install_via_api(live, user, "welcome")
    await install_via_api(live, owner, "analytics")
    titled = message_update(1, chat_id=-7)
    titled["message"]["chat"]["title"] = "Book Club"
    assert (await deliver(live, bot, titled)).status_code == 200
    assert (await deliver(live, others_bot, message_update(3, chat_id=-7))).status_code == 200  # another user's chat -7
    await wait_until_processed(live)

    installs = (await live.graphql(CHAT_RUNS, user=owner))["myPlugins"]
    [welcome] = [i["runs"]["nodes"] for i in installs if i["plugin"]["slug"] == "welcome"]
    assert [(run["chatId"], run["chatTitle"]) for run in welcome] == [("-7", "Book Club")]
    [mine] = [i["runs"]["nodes"] for i in installs if i["plugin"]["slug"] == "analytics"]
    assert {(run["chatId"], run["chatTitle"]) for run in mine} == {("-7", "Book Club")}
    [theirs] = (await live.graphql(CHAT_RUNS, user=other))["myPlugins"]
    assert [(run["chatId"], run["chatTitle"]) for run in theirs["runs"]["nodes"]] == [("-7", None)]
