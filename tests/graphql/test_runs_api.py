"""`UserPlugin.runs` and `retryRun` over GraphQL: pages newest first that cover every run once,
at a cost that does not grow with the history; a failed or skipped run retried once on its stored
event, idempotently and audited."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.gateways.models import GatewayEvent
from app.ids import new_id
from app.plugins.contract import Schedule
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.welcome import WelcomeHandler
from app.plugins.models import RunOutcome, RunRecord
from app.plugins.pruning import prune_history
from tests.support.flaky import FlakyPlugin
from tests.support.installs_api import (
    RETRY,
    RUNS,
    audit_events,
    install_via_api,
    retry_run,
    runs_of,
    runs_page,
    toggle,
)
from tests.support.live import LiveApp, TestUser
from tests.support.queries import counting_queries
from tests.support.runtime import connect_bot, deliver, service_context, stored, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update, user


async def add_runs(app: LiveApp, install_id: str, moments: list[datetime]) -> list[str]:
    """Runs of the install recorded at `moments` (equal moments make ties); their ids."""
    rows = [
        RunRecord(
            id=new_id(),
            install_id=install_id,
            event_key=f"k{n}",
            success=n % 3 != 0,
            outcome=RunOutcome.SUCCEEDED if n % 3 else RunOutcome.FAILED,
            event_type="telegram.message",
            chat_id=-n,
            duration_ms=float(n),
            created_at=moment,
        )
        for n, moment in enumerate(moments)
    ]
    with app.db():
        await RunRecord.bulk_create(rows, batch_size=500)
        # auto_now_add may have overwritten created_at: set it as asked.
        for row in rows:
            await RunRecord.filter(id=row.id).update(created_at=row.created_at)
    return [row.id for row in rows]


def newest_first(ids: list[str], moments: list[datetime]) -> list[str]:
    return [run_id for _, run_id in sorted(zip(moments, ids), reverse=True)]


@pytest.fixture
async def flaky() -> FlakyPlugin:
    return FlakyPlugin()


@pytest.fixture
async def live(make_app, flaky) -> LiveApp:
    return await make_app(handlers=[flaky])


@pytest.fixture
async def owner(live) -> TestUser:
    return await live.create_user("owner@example.com", "pro")


# --- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 7, 25, 100])
async def test_pages_cover_every_run_once_newest_first_ties_included(live, owner, page_size):
    installed = await install_via_api(live, owner, "flaky")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(seconds=n // 5) for n in range(25)]  # five runs share each moment
    ids = await add_runs(live, installed["id"], moments)

    seen: list[str] = []
    after = None
    while True:
        page = await runs_page(live, owner, "flaky", page_size, after)
        assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
        assert 0 < len(page["edges"]) <= page_size
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == newest_first(ids, moments)


async def test_a_page_starts_after_any_edge_cursor(live, owner):
    installed = await install_via_api(live, owner, "flaky")
    moments = [datetime(2026, 1, 1, tzinfo=UTC)] * 6  # all tied
    ids = newest_first(await add_runs(live, installed["id"], moments), moments)
    page = await runs_page(live, owner, "flaky", 6)
    third = page["edges"][2]["cursor"]
    rest = await runs_page(live, owner, "flaky", 10, third)
    assert [n["id"] for n in rest["nodes"]] == ids[3:]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_no_runs_is_an_empty_page(live, owner):
    await install_via_api(live, owner, "flaky")
    page = await runs_page(live, owner, "flaky")
    assert page == {"edges": [], "nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_runs_made_by_events_page_newest_first(live, owner, telegram, flaky):
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    for n in range(1, 6):
        await deliver(live, bot, message_update(n, text=f"m{n}", chat_id=-n))
    await wait_until_processed(live)

    paged = await runs_of(live, owner, "flaky", first=2)
    assert len(paged) == 5 and len({run["id"] for run in paged}) == 5
    assert [run["id"] for run in paged] == [
        node["id"] for node in (await runs_page(live, owner, "flaky", 100))["nodes"]
    ]
    moments = [run["createdAt"] for run in paged]
    assert moments == sorted(moments, reverse=True)


@pytest.mark.parametrize("first", [0, -1, 101, 10_000])
async def test_first_outside_1_to_100_is_bad_user_input(live, owner, first):
    await install_via_api(live, owner, "flaky")
    error = await live.graphql_error(RUNS, {"first": first}, user=owner)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/first", "message": "must be between 1 and 100"}]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!",
        "x" * 10_000,
        "é",
        b64("not a cursor"),
        b64("2026-01-01T00:00:00|" + new_id()),  # no time zone
        b64("2026-01-01T00:00:00+00:00|../../etc"),  # not an id
        b64("9999-99-99T00:00:00+00:00|" + new_id()),
    ],
    ids=["empty", "garbage", "punctuation", "huge", "non-ascii", "no-separator", "naive-time", "bad-id", "bad-date"],
)
async def test_a_cursor_we_did_not_hand_out_is_bad_user_input(live, owner, cursor):
    await install_via_api(live, owner, "flaky")
    error = await live.graphql_error(RUNS, {"first": 5, "after": cursor}, user=owner)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/after", "message": "is not a cursor from runs"}]


async def test_each_user_sees_only_the_runs_of_their_own_installs(live, owner, telegram, flaky):
    other = await live.create_user("other@example.com", "pro")
    mine = await install_via_api(live, owner, "flaky")
    await install_via_api(live, other, "flaky")
    their_bot = await connect_bot(live, other, telegram)
    for n in range(3):
        await deliver(live, their_bot, message_update(n + 1))
    await wait_until_processed(live)

    assert await runs_of(live, owner, "flaky") == []
    assert len(await runs_of(live, other, "flaky")) == 3
    # Asked for another user's install by id, the service answers with no runs.
    their_run = (await runs_of(live, other, "flaky"))[0]
    with live.db():
        their_install_id = (await RunRecord.get(id=their_run["id"])).install_id
        rows, more = await live.platform.run_history.runs_of(await service_context(live, owner), their_install_id)
    assert (rows, more) == ([], False)
    assert their_install_id != mine["id"]


async def test_a_page_costs_the_same_queries_with_10_or_1000_runs(make_app):
    # No background queries in the count, and every request reads its token (none is cached).
    live = await make_app(handlers=[FlakyPlugin()], inbox_concurrency=0, token_cache_seconds=0)
    small, large = (
        await live.create_user("small@example.com", "pro"),
        await live.create_user("large@example.com", "pro"),
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for who, count in ((small, 10), (large, 1000)):
        installed = await install_via_api(live, who, "flaky")
        await add_runs(live, installed["id"], [start + timedelta(seconds=n) for n in range(count)])

    costs = []
    for who in (small, large):
        with counting_queries() as statements:
            first = await runs_page(live, who, "flaky", 5)
            second = await runs_page(live, who, "flaky", 5, first["pageInfo"]["endCursor"])
        assert len(first["nodes"]) == len(second["nodes"]) == 5
        costs.append(len(statements))
    assert costs[0] == costs[1], costs


async def test_on_postgresql_a_page_reads_the_runs_index_not_the_history(backend, make_app, monkeypatch):
    if backend != "postgres":
        pytest.skip("EXPLAIN plans are PostgreSQL's")
    live = await make_app(handlers=[FlakyPlugin()], inbox_concurrency=0)
    owner = await live.create_user("plan@example.com", "pro")
    installed = await install_via_api(live, owner, "flaky")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await add_runs(live, installed["id"], [start + timedelta(seconds=n) for n in range(3000)])
    with live.db():
        client = RunRecord._meta.db
    sent: list[tuple[str, list]] = []  # the statements the app sends, with their values
    execute_query = type(client).execute_query

    async def spy(self, query, values=None):
        if "plugin_executions" in query:
            sent.append((query, list(values or [])))
        return await execute_query(self, query, values)

    first = await runs_page(live, owner, "flaky", 20)
    monkeypatch.setattr(type(client), "execute_query", spy)
    await runs_page(live, owner, "flaky", 20, first["pageInfo"]["endCursor"])
    monkeypatch.undo()

    [(query, values)] = sent
    with live.db():
        await client.execute_script("ANALYZE plugin_executions; ANALYZE user_plugins")
        [index] = await client.execute_query_dict(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'plugin_executions' "
            "AND indexdef LIKE '%(install_id, created_at, id)%'"
        )
        plan = "\n".join(row["QUERY PLAN"] for row in await client.execute_query_dict(f"EXPLAIN {query}", values))

    # Read in index order from the page's position, stopping after the page: no scan, no sort.
    assert f"Index Scan Backward using {index['indexname']} on plugin_executions" in plan, plan
    assert "Seq Scan on plugin_executions" not in plan, plan
    assert "Sort" not in plan, plan


# --- retryRun -----------------------------------------------------------------------------------


async def failed_run(live: LiveApp, owner: TestUser, telegram, flaky: FlakyPlugin, text: str = "hello") -> dict:
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    await deliver(live, bot, message_update(1, text=text, chat_id=-9))
    await wait_until_processed(live)
    [run] = await runs_of(live, owner, "flaky")
    assert run["outcome"] == "FAILED"
    return run


async def test_a_failed_run_is_retried_on_its_stored_event(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky, "try me")
    flaky.failing_for.clear()

    retry = await retry_run(live, owner, failed["id"])

    assert retry["id"] != failed["id"]
    assert (retry["outcome"], retry["trigger"], retry["retryOf"], retry["canRetry"]) == (
        "SUCCEEDED",
        "RETRY",
        failed["id"],
        False,
    )
    assert (retry["eventType"], retry["chatId"]) == ("telegram.message", "-9")
    assert [(c.text, c.trigger) for c in flaky.calls] == [("try me", "event"), ("try me", "retry")]
    runs = await runs_of(live, owner, "flaky")
    assert [r["id"] for r in runs] == [retry["id"], failed["id"]]
    assert await stored(live, (await install_id_of(live, failed["id"])), "done") == 1  # the retry's writes landed
    [audit] = await audit_events(live, owner, "plugin.run_retry")
    assert audit == {"slug": "flaky", "runId": failed["id"], "retryRunId": retry["id"], "outcome": "SUCCEEDED"}


async def install_id_of(live: LiveApp, run_id: str) -> str:
    with live.db():
        return (await RunRecord.get(id=run_id)).install_id


async def test_retrying_again_answers_with_the_same_retry_and_runs_nothing(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    flaky.failing_for.clear()

    first = await retry_run(live, owner, failed["id"])
    second = await retry_run(live, owner, failed["id"])

    assert second == first
    assert len(flaky.calls) == 2  # the event, and one retry
    assert len(await audit_events(live, owner, "plugin.run_retry")) == 1
    assert len(await runs_of(live, owner, "flaky")) == 2


async def test_concurrent_retries_run_the_plugin_once(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    flaky.failing_for.clear()
    flaky.seconds = 0.5  # a run that takes a moment, as one that sends a message does

    answers = await asyncio.gather(*(live.graphql_response(RETRY, {"id": failed["id"]}, user=owner) for _ in range(5)))

    assert all(not a.get("errors") for a in answers), answers
    assert len({a["data"]["retryRun"]["id"] for a in answers}) == 1
    assert len(await audit_events(live, owner, "plugin.run_retry")) == 1
    assert len(flaky.calls) == 2  # the event, and one retry


async def test_a_failed_retry_can_itself_be_retried(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    retry = await retry_run(live, owner, failed["id"])  # still failing
    assert (retry["outcome"], retry["canRetry"]) == ("FAILED", True)
    assert retry["error"] == "RuntimeError: flaky failure on 'hello'"
    flaky.failing_for.clear()

    again = await retry_run(live, owner, retry["id"])

    assert (again["outcome"], again["retryOf"]) == ("SUCCEEDED", retry["id"])
    assert await retry_run(live, owner, failed["id"]) == retry  # the original's one retry stays that one
    assert [c.trigger for c in flaky.calls] == ["event", "retry", "retry"]


async def test_a_schedule_run_is_retried_on_its_schedule(make_app, telegram):
    flaky = FlakyPlugin(schedules=(Schedule("digest", every_seconds=60),))
    live = await make_app(handlers=[flaky])
    owner = await live.create_user("digest@example.com", "pro")
    await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    flaky.failing_for.add(owner.id)
    with live.db():
        await live.platform.scheduler.fire_due(1_800_000_030.0)
    [failed] = await runs_of(live, owner, "flaky")
    flaky.failing_for.clear()

    retry = await retry_run(live, owner, failed["id"])

    assert (retry["outcome"], retry["eventType"], retry["schedule"], retry["firedAt"]) == (
        "SUCCEEDED",
        "schedule.trigger",
        "digest",
        failed["firedAt"],
    )
    assert [(c.event_type, c.trigger) for c in flaky.calls] == [
        ("schedule.trigger", "schedule"),
        ("schedule.trigger", "retry"),
    ]


async def test_retrying_a_welcome_that_telegram_refused_sends_the_greeting_once(make_app, telegram):
    live = await make_app(handlers=[WelcomeHandler(), AnalyticsHandler()])
    owner = await live.create_user("host@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "welcome")
    telegram.fail_next("sendMessage", 403, "Forbidden: bot is not a member of the supergroup chat")
    await deliver(live, bot, new_members_update(1, user(7, "Grace"), chat_id=-42))
    await wait_until_processed(live)
    [failed] = await runs_of(live, owner, "welcome")
    assert "bot is not a member" in failed["error"]

    retry = await retry_run(live, owner, failed["id"])
    await retry_run(live, owner, failed["id"])

    assert retry["outcome"] == "SUCCEEDED"
    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["Welcome, Grace!"]


# --- what retryRun refuses ------------------------------------------------------------------------


async def assert_refused(live: LiveApp, owner: TestUser, run_id: str, code: str) -> dict:
    with live.db():
        runs_before = await RunRecord.all().count()
    error = await live.graphql_error(RETRY, {"id": run_id}, user=owner)
    assert error["extensions"]["code"] == code, error
    with live.db():
        assert await RunRecord.all().count() == runs_before
    assert await audit_events(live, owner, "plugin.run_retry") == []
    return error


async def test_a_succeeded_run_is_not_retried(live, owner, telegram, flaky):
    bot = await connect_bot(live, owner, telegram)
    await install_via_api(live, owner, "flaky")
    await deliver(live, bot, message_update(1))
    await wait_until_processed(live)
    [run] = await runs_of(live, owner, "flaky")

    await assert_refused(live, owner, run["id"], "BAD_USER_INPUT")
    assert len(flaky.calls) == 1


async def test_another_users_run_is_not_found(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    stranger = await live.create_user("stranger@example.com", "pro")
    await install_via_api(live, stranger, "flaky")
    await assert_refused(live, stranger, failed["id"], "NOT_FOUND")
    assert len(flaky.calls) == 1


# A well-formed id that names no run is a constant: every pytest-xdist worker must collect the same ids.
@pytest.mark.parametrize(
    "run_id", ["nope", "", "x" * 10_000, "../../etc/passwd", "0123456789abcdef0123456789abcdef", "1 OR 1=1"]
)
async def test_an_id_that_names_no_run_is_not_found(live, owner, run_id):
    await assert_refused(live, owner, run_id, "NOT_FOUND")


async def test_a_run_whose_event_was_pruned_is_bad_user_input(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    flaky.failing_for.clear()
    with live.db():
        # The inbox retention passed: events go, runs (kept longer) stay.
        now = datetime.now(UTC)
        await prune_history(now + timedelta(hours=1), now - timedelta(days=7))
        assert await GatewayEvent.all().count() == 0

    error = await assert_refused(live, owner, failed["id"], "BAD_USER_INPUT")
    assert "no longer kept" in error["message"]
    assert len(flaky.calls) == 1


async def test_a_run_of_a_disabled_install_is_not_retried(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    flaky.failing_for.clear()
    await toggle(live, owner, "flaky", False)

    error = await assert_refused(live, owner, failed["id"], "BAD_USER_INPUT")
    assert "DISABLED" in error["message"]
    assert len(flaky.calls) == 1


async def test_retrying_needs_an_api_token(live, owner, telegram, flaky):
    failed = await failed_run(live, owner, telegram, flaky)
    error = await live.graphql_error(RETRY, {"id": failed["id"]})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert len(flaky.calls) == 1
