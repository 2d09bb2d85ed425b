"""The circuit breaker: after BREAKER_FAILURES failed runs in a row an install is FAILING, and its
events are skipped (recorded as SKIPPED, never queued) until a trial run after a backoff that
doubles up to BREAKER_MAX_BACKOFF_SECONDS. A success, or its user turning it off and on or
changing its config, closes it. No other install is ever affected."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from app.gateways.models import EventStatus, GatewayEvent
from app.plugins.dispatcher import LANE_BATCH
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from app.plugins.models import RunRecord, UserPlugin
from app.plugins.router import SKIPPED_ERROR
from tests.support.flaky import FlakyPlugin
from tests.support.installs_api import (
    install_via_api,
    my_install,
    retry_run,
    runs_of,
    status_changes,
    toggle,
    update_config,
)
from tests.support.live import LiveApp, TestUser
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import (
    ConnectedBot,
    connect_bot,
    deliver,
    messages_counted,
    wait_until_processed,
)
from tests.support.telegram_updates import message_update, new_members_update, user

OPENED = "circuit breaker opened"
CLOSED = "circuit breaker closed: a trial run succeeded"


_update_ids = itertools.count(1)


async def send(app: LiveApp, bot: ConnectedBot, *texts: str, chat_id: int = -100) -> None:
    """Delivers one message per text, each a new update, and waits until they are processed."""
    for text in texts:
        update = message_update(next(_update_ids), text=text, chat_id=chat_id)
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)


async def install_row(app: LiveApp, owner: TestUser, slug: str) -> UserPlugin:
    with app.db():
        return await UserPlugin.get(user_id=owner.id, plugin__slug=slug)


async def wait_for_probe(app: LiveApp, owner: TestUser, slug: str) -> None:
    """Sleeps until the install's trial run is due."""
    row = await install_row(app, owner, slug)
    assert row.probe_at is not None
    await asyncio.sleep(max((row.probe_at - datetime.now(UTC)).total_seconds(), 0) + 0.05)


async def outcomes(app: LiveApp, owner: TestUser, slug: str) -> list[str]:
    """The install's run outcomes, oldest first."""
    return [run["outcome"] for run in reversed(await runs_of(app, owner, slug))]


@pytest.fixture
async def flaky() -> FlakyPlugin:
    return FlakyPlugin()


async def test_failures_in_a_row_open_the_breaker_and_later_events_are_skipped_not_queued(make_app, telegram, flaky):
    recorder = RecordingPlugin()
    live = await make_app(handlers=[flaky, recorder], breaker_failures=3, breaker_backoff_seconds=600)
    owner, other = (
        await live.create_user("owner@example.com", "pro"),
        await live.create_user("other@example.com", "pro"),
    )
    bot, other_bot = (
        await connect_bot(live, owner, telegram, "owner_bot"),
        await connect_bot(live, other, telegram, "other_bot"),
    )
    for slug in ("flaky", "recorder"):
        await install_via_api(live, owner, slug)
    await install_via_api(live, other, "flaky")
    flaky.failing_for.add(owner.id)

    await send(live, bot, "m1", "m2")
    assert (await my_install(live, owner, "flaky"))["status"] == "ACTIVE"  # two failures: not yet
    await send(live, bot, "m3")

    paused = await my_install(live, owner, "flaky")
    assert (paused["status"], paused["consecutiveFailures"], paused["executionCount"]) == ("FAILING", 3, 3)
    assert paused["statusReason"].startswith(
        "Paused after 3 failed runs in a row; its events are skipped until a trial run at "
    )
    assert paused["statusReason"].endswith("The last error: RuntimeError: flaky failure on 'm3'")
    assert await status_changes(live, owner, "flaky") == [("ACTIVE", "FAILING", OPENED)]

    await send(live, bot, "m4", "m5")
    assert [call.text for call in flaky.calls_for(owner.id)] == ["m1", "m2", "m3"]  # not called again
    runs = await runs_of(live, owner, "flaky")
    assert [(r["outcome"], r["error"], r["canRetry"]) for r in runs[:2]] == [("SKIPPED", SKIPPED_ERROR, True)] * 2
    assert [r["outcome"] for r in runs[2:]] == ["FAILED"] * 3
    after = await my_install(live, owner, "flaky")
    assert (after["status"], after["consecutiveFailures"], after["executionCount"]) == ("FAILING", 3, 3)
    with live.db():  # skipped, not left in the inbox to be tried again
        assert set(await GatewayEvent.all().values_list("status", flat=True)) == {EventStatus.DONE}

    # The owner's other plugin saw every event; another user's install of the same plugin runs on.
    assert [e.message.text for e in recorder.seen] == ["m1", "m2", "m3", "m4", "m5"]
    await send(live, other_bot, "theirs")
    assert [call.text for call in flaky.calls_for(other.id)] == ["theirs"]
    assert (await my_install(live, other, "flaky"))["status"] == "ACTIVE"
    assert await outcomes(live, other, "flaky") == ["SUCCEEDED"]


async def test_only_failures_in_a_row_count(make_app, telegram, flaky):
    live = await make_app(handlers=[flaky], breaker_failures=3)
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")

    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")
    flaky.failing_for.clear()
    await send(live, bot, "good")
    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")

    install = await my_install(live, owner, "flaky")
    assert (install["status"], install["consecutiveFailures"]) == ("ACTIVE", 2)


async def test_a_trial_run_after_the_backoff_that_succeeds_closes_the_breaker(make_app, telegram, flaky):
    # A backoff long enough for the next event to arrive before it ends, even on a busy machine.
    live = await make_app(handlers=[flaky], breaker_failures=2, breaker_backoff_seconds=3)
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")
    await send(live, bot, "too early")  # before the backoff: skipped
    flaky.failing_for.clear()

    await wait_for_probe(live, owner, "flaky")
    await send(live, bot, "trial")
    await send(live, bot, "after")

    install = await my_install(live, owner, "flaky")
    assert (install["status"], install["statusReason"], install["consecutiveFailures"]) == ("ACTIVE", None, 0)
    assert await outcomes(live, owner, "flaky") == ["FAILED", "FAILED", "SKIPPED", "SUCCEEDED", "SUCCEEDED"]
    assert [call.text for call in flaky.calls_for(owner.id)] == ["bad", "bad", "trial", "after"]
    assert await status_changes(live, owner, "flaky") == [("ACTIVE", "FAILING", OPENED), ("FAILING", "ACTIVE", CLOSED)]
    row = await install_row(live, owner, "flaky")
    assert (row.probe_at, row.backoff_seconds) == (None, 0)


async def test_a_failed_trial_doubles_the_backoff_up_to_the_ceiling(make_app, telegram, flaky):
    live = await make_app(
        handlers=[flaky], breaker_failures=2, breaker_backoff_seconds=0.5, breaker_max_backoff_seconds=2
    )
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)

    backoffs = []
    await send(live, bot, "bad", "bad")
    for trial in range(4):
        processed = datetime.now(UTC)  # every run so far is recorded (send waits for processing)
        row = await install_row(live, owner, "flaky")
        with live.db():
            last_run = (
                await RunRecord.filter(install_id=row.id).exclude(outcome="SKIPPED").order_by("-created_at").first()
            )
        assert last_run is not None
        # the backoff counts from the commit that recorded the run, just after the run finished
        opened_at = row.probe_at - timedelta(seconds=row.backoff_seconds)
        assert last_run.created_at <= opened_at <= processed
        backoffs.append(row.backoff_seconds)
        await wait_for_probe(live, owner, "flaky")
        await send(live, bot, f"trial {trial}")

    assert backoffs == [0.5, 1.0, 2.0, 2.0]
    assert [c.text for c in flaky.calls_for(owner.id)] == ["bad", "bad", "trial 0", "trial 1", "trial 2", "trial 3"]
    install = await my_install(live, owner, "flaky")
    assert (install["status"], install["consecutiveFailures"]) == ("FAILING", 6)
    assert await status_changes(live, owner, "flaky") == [
        ("ACTIVE", "FAILING", OPENED)
    ]  # one change: it stayed FAILING


async def test_a_burst_of_failures_opens_the_breaker_with_the_first_backoff(make_app, telegram, flaky):
    inbox_only = await make_app(handlers=[flaky], inbox_concurrency=0)
    owner = await inbox_only.create_user("burst@example.com", "pro")
    bot = await connect_bot(inbox_only, owner, telegram)
    await install_via_api(inbox_only, owner, "flaky")
    flaky.failing_for.add(owner.id)
    burst = LANE_BATCH + 6  # one chat's events: claimed at once, run and recorded in two commits
    for n in range(1, burst + 1):  # stored, not yet processed
        assert (await deliver(inbox_only, bot, message_update(n, text=f"m{n}", chat_id=-5))).status_code == 200

    worker = await make_app(
        handlers=[flaky], breaker_failures=3, breaker_backoff_seconds=1, breaker_max_backoff_seconds=3600
    )
    await wait_until_processed(worker)

    row = await install_row(worker, owner, "flaky")
    assert row.status.value == "FAILING"
    assert row.backoff_seconds == 1  # no trial run has failed yet


async def test_turning_it_off_and_on_closes_the_breaker(make_app, telegram, flaky):
    live = await make_app(handlers=[flaky], breaker_failures=2, breaker_backoff_seconds=600)
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")
    assert (await my_install(live, owner, "flaky"))["status"] == "FAILING"
    flaky.failing_for.clear()

    assert (await toggle(live, owner, "flaky", False))["status"] == "DISABLED"
    enabled = await toggle(live, owner, "flaky", True)
    assert (enabled["status"], enabled["consecutiveFailures"]) == ("ACTIVE", 0)
    await send(live, bot, "runs at once")  # no backoff left to wait for

    assert [c.text for c in flaky.calls_for(owner.id)] == ["bad", "bad", "runs at once"]
    assert [(f, t) for f, t, _ in await status_changes(live, owner, "flaky")] == [
        ("ACTIVE", "FAILING"),
        ("FAILING", "DISABLED"),
        ("DISABLED", "ACTIVE"),
    ]
    row = await install_row(live, owner, "flaky")
    assert (row.probe_at, row.backoff_seconds) == (None, 0)


async def test_a_config_change_closes_the_breaker(make_app, telegram, flaky):
    live = await make_app(handlers=[flaky], breaker_failures=2, breaker_backoff_seconds=600)
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")
    flaky.failing_for.clear()

    updated = await update_config(live, owner, "flaky", {})
    assert (updated["status"], updated["statusReason"], updated["consecutiveFailures"]) == ("ACTIVE", None, 0)
    await send(live, bot, "runs at once")

    assert [c.text for c in flaky.calls_for(owner.id)] == ["bad", "bad", "runs at once"]
    assert await status_changes(live, owner, "flaky") == [
        ("ACTIVE", "FAILING", OPENED),
        ("FAILING", "ACTIVE", "config updated"),
    ]


async def test_a_successful_retry_of_a_skipped_run_closes_the_breaker(make_app, telegram, flaky):
    live = await make_app(handlers=[flaky], breaker_failures=2, breaker_backoff_seconds=600)
    owner = await live.create_user("owner@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    await send(live, bot, "bad", "bad")
    await send(live, bot, "skipped")
    flaky.failing_for.clear()
    skipped = (await runs_of(live, owner, "flaky"))[0]
    assert skipped["outcome"] == "SKIPPED"

    retry = await retry_run(live, owner, skipped["id"])

    assert (retry["outcome"], retry["trigger"], retry["retryOf"]) == ("SUCCEEDED", "RETRY", skipped["id"])
    assert flaky.calls_for(owner.id)[-1].text == "skipped"
    assert flaky.calls_for(owner.id)[-1].trigger == "retry"
    assert (await my_install(live, owner, "flaky"))["status"] == "ACTIVE"


# --- the real welcome plugin against a Telegram that refuses its sends ----------------------


async def setup_welcome(live: LiveApp, telegram) -> tuple[TestUser, ConnectedBot, str]:
    owner = await live.create_user("host@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "welcome")
    analytics = await install_via_api(live, owner, "analytics")
    return owner, bot, analytics["id"]


async def greet(live: LiveApp, bot: ConnectedBot, update_id: int, name: str, chat_id: int) -> None:
    assert (
        await deliver(live, bot, new_members_update(update_id, user(update_id, name), chat_id=chat_id))
    ).status_code == 200
    await wait_until_processed(live)
    await wait_until_processed(live)  # a greeting's own message_sent event


async def test_welcome_pauses_while_telegram_refuses_its_greetings_and_resumes_after_a_trial(make_app, telegram):
    live = await make_app(
        handlers=[WelcomeHandler(), AnalyticsHandler()], breaker_failures=3, breaker_backoff_seconds=3
    )
    owner, bot, analytics_id = await setup_welcome(live, telegram)
    kicked = "Forbidden: bot was kicked from the supergroup chat"
    for _ in range(3):
        telegram.fail_next("sendMessage", 403, kicked)

    for n, name in enumerate(["Ann", "Bob", "Cy"], start=1):
        await greet(live, bot, n, name, chat_id=-n)  # a chat each: no wait for the per-chat limit
    welcome = await my_install(live, owner, "welcome")
    assert welcome["status"] == "FAILING"
    assert kicked in welcome["statusReason"]
    assert bot.token.partition(":")[2] not in json.dumps([welcome, await runs_of(live, owner, "welcome")])
    await greet(live, bot, 4, "Dee", chat_id=-4)  # skipped: Telegram is not even asked
    assert len(telegram.sends()) == 3
    assert [s.status for s in telegram.sends()] == [403, 403, 403]

    await wait_for_probe(live, owner, "welcome")
    await greet(live, bot, 5, "Eve", chat_id=-5)  # Telegram takes sends again

    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["Welcome, Eve!"]
    assert (await my_install(live, owner, "welcome"))["status"] == "ACTIVE"
    assert await outcomes(live, owner, "welcome") == ["FAILED", "FAILED", "FAILED", "SKIPPED", "SUCCEEDED"]
    # Channel Analytics counted every message all along, and the greeting that was sent.
    for chat_id in (-1, -2, -3, -4):
        assert await messages_counted(live, analytics_id, chat_id) == 1
    assert await messages_counted(live, analytics_id, -5) == 2
    assert (await my_install(live, owner, "analytics"))["status"] == "ACTIVE"


async def test_welcome_server_errors_past_the_send_retries_count_as_failures(make_app, telegram):
    live = await make_app(
        handlers=[WelcomeHandler(), AnalyticsHandler()],
        breaker_failures=2,
        breaker_backoff_seconds=600,
        send_retries=1,
        send_retry_backoff_seconds=0.05,
    )
    owner, bot, _ = await setup_welcome(live, telegram)
    for _ in range(4):  # two runs, each tried twice
        telegram.fail_next("sendMessage", 502)

    await greet(live, bot, 1, "Ann", chat_id=-1)
    await greet(live, bot, 2, "Bob", chat_id=-2)

    assert [s.status for s in telegram.sends()] == [502, 502, 502, 502]
    welcome = await my_install(live, owner, "welcome")
    assert (welcome["status"], welcome["consecutiveFailures"]) == ("FAILING", 2)
    runs = await runs_of(live, owner, "welcome")
    assert all("Bad Gateway" in (run["error"] or "") for run in runs), runs
    assert bot.token.partition(":")[2] not in json.dumps([welcome, runs])


async def test_welcome_waits_out_a_short_flood_wait_and_it_is_no_failure(make_app, telegram):
    live = await make_app(
        handlers=[WelcomeHandler(), AnalyticsHandler()], breaker_failures=1, breaker_backoff_seconds=600
    )
    owner, bot, _ = await setup_welcome(live, telegram)
    telegram.flood(retry_after=1)

    await greet(live, bot, 1, "Ann", chat_id=-1)

    assert [s.status for s in telegram.sends()] == [429, 200]
    assert telegram.sends()[1].at - telegram.sends()[0].at >= 0.9  # it waited as Telegram asked
    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["Welcome, Ann!"]
    welcome = await my_install(live, owner, "welcome")
    assert (welcome["status"], welcome["consecutiveFailures"]) == ("ACTIVE", 0)


async def test_welcome_told_to_wait_longer_than_its_run_may_fails_and_the_breaker_counts_it(make_app, telegram):
    live = await make_app(
        handlers=[WelcomeHandler(), AnalyticsHandler()],
        breaker_failures=2,
        breaker_backoff_seconds=600,
        plugin_timeout_seconds=3,
    )
    owner, bot, _ = await setup_welcome(live, telegram)
    telegram.flood(retry_after=60)

    await greet(live, bot, 1, "Ann", chat_id=-1)
    await greet(live, bot, 2, "Bob", chat_id=-2)  # the bot is paused for a minute: no send is even tried

    assert [s.status for s in telegram.sends()] == [429]
    welcome = await my_install(live, owner, "welcome")
    assert (welcome["status"], welcome["consecutiveFailures"]) == ("FAILING", 2)
    runs = await runs_of(live, owner, "welcome")
    assert all("rate limited" in (run["error"] or "") for run in runs), runs


async def test_welcome_unable_to_reach_telegram_fails_without_showing_the_token(make_app, telegram):
    from tests.fakes.telegram import unreachable_url

    reachable = await make_app(handlers=[WelcomeHandler(), AnalyticsHandler()], inbox_concurrency=0)
    owner, bot, _ = await setup_welcome(reachable, telegram)
    cut_off = await make_app(  # another process, whose Bot API is out of reach
        handlers=[WelcomeHandler(), AnalyticsHandler()],
        telegram_api_url=unreachable_url(),
        breaker_failures=2,
        breaker_backoff_seconds=600,
        send_retries=1,
        send_retry_backoff_seconds=0.05,
    )

    for n in (1, 2):
        assert (await deliver(reachable, bot, new_members_update(n, user(n, "Ann"), chat_id=-n))).status_code == 200
        await wait_until_processed(cut_off)

    welcome = await my_install(cut_off, owner, "welcome")
    runs = await runs_of(cut_off, owner, "welcome")
    assert (welcome["status"], [r["outcome"] for r in runs]) == ("FAILING", ["FAILED", "FAILED"])
    shown = json.dumps([welcome, runs])
    for secret in (bot.token, quote(bot.token), bot.token.partition(":")[2]):
        assert secret not in shown
