"""Channel Analytics run on demand (runPlugin): the same figures Query.analytics answers for the same
data, in the shape its outputSchema documents, plus the window in one sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.analytics.figures import FIGURES_SCHEMA
from tests.support.installs_api import run_plugin, run_plugin_error, update_config
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import ConnectedBot, connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import channel_post_update, chat_member, chat_member_update, message_update

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
DAY = timedelta(days=1)
PERIOD = "start end totalMessages messagesReceived messagesSent uniqueUsers joins leaves messagesToday messagesThisWeek"
SUMMARY = f"""query($chatId: ID, $days: Int!) {{ analytics(chatId: $chatId, days: $days) {{
  timezone totalMessages messagesReceived messagesSent uniqueUsers messagesToday messagesThisWeek
  activeUsers {{ day week month }}
  period {{ {PERIOD} }} previousPeriod {{ {PERIOD} }}
  daily(days: $days) {{ date messages users joins leaves }}
  hourly
  chats {{ chatId title type messages users totalMessages }} }} }}"""

SUMMARY_RANGE = f"""query($from: Date, $to: Date) {{ analytics(from: $from, to: $to) {{
  period {{ {PERIOD} }} daily {{ date messages users joins leaves }} hourly }} }}"""


def at(moment: datetime, update: dict[str, Any]) -> dict[str, Any]:
    for key in ("message", "channel_post", "chat_member"):
        if key in update:
            update[key]["date"] = int(moment.timestamp())
    return update


@pytest.fixture
async def counted(app: LiveApp, telegram) -> tuple[TestUser, ConnectedBot]:
    """A user whose bot's messages over three weeks, in three chats, went through the webhook and
    were counted by Channel Analytics; the app's clock fixed at NOW."""
    app.platform.clock = lambda: NOW
    owner = await app.create_user("stats@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    updates = [
        at(NOW, message_update(1, chat_id=-1, sender_id=10)),
        at(NOW, message_update(2, chat_id=-1, sender_id=11)),
        at(NOW - DAY, message_update(3, chat_id=-1, sender_id=10)),
        at(NOW - 3 * DAY, message_update(4, chat_id=-2, sender_id=12)),
        at(NOW - 9 * DAY, message_update(5, chat_id=-2, sender_id=13)),
        at(NOW - 20 * DAY, message_update(6, chat_id=-2, sender_id=14)),
        at(NOW, channel_post_update(7, chat_id=-3)),
        at(NOW, chat_member_update(8, chat_member("left", 15), chat_member("member", 15), chat_id=-1)),
        at(NOW - 2 * DAY, chat_member_update(9, chat_member("member", 11), chat_member("left", 11), chat_id=-1)),
    ]
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    return owner, bot


async def queried(app: LiveApp, owner: TestUser, days: int, chat_id: int | None = None) -> dict[str, Any]:
    """Query.analytics' answer, in the run's shape: its chat ids are numbers, and it says its window."""
    variables = {"days": days, "chatId": None if chat_id is None else str(chat_id)}
    summary = (await app.graphql(SUMMARY, variables, user=owner))["analytics"]
    chats = [{**chat, "chatId": int(chat["chatId"])} for chat in summary["chats"]]
    return {**summary, "chats": chats, "chatId": chat_id, "days": days}


def window(days: int, chat_id: int | None) -> dict[str, Any]:
    """The run's input: every chat when no chat is named."""
    return {"days": days} if chat_id is None else {"days": days, "chatId": chat_id}


def without_text(output: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in output.items() if key != "text"}


async def test_a_run_answers_the_figures_query_analytics_answers(app, counted):
    owner, _ = counted
    run = await run_plugin(app, owner, "analytics", {"days": 7})

    assert (run["outcome"], run["trigger"], run["error"]) == ("SUCCEEDED", "STANDALONE", None)
    expected = await queried(app, owner, 7)
    assert without_text(run["output"]) == expected
    assert expected["totalMessages"] == 7 and expected["period"]["totalMessages"] == 5  # the data was there
    assert run["output"]["text"] == (
        "The last 7 days (2026-06-09 to 2026-06-15): 5 messages from 3 users; 1 joined, 1 left."
    )
    assert run["apiCalls"] == 0  # read from its own tables: no call out


@pytest.mark.parametrize(("days", "chat_id"), [(1, None), (30, None), (30, -2), (7, -1), (7, -404)])
async def test_each_window_and_chat_answers_as_the_query_does(app, counted, days, chat_id):
    owner, _ = counted
    run = await run_plugin(app, owner, "analytics", window(days, chat_id))
    assert without_text(run["output"]) == await queried(app, owner, days, chat_id)


async def test_days_default_to_seven(app, counted):
    owner, _ = counted
    run = await run_plugin(app, owner, "analytics")
    assert (run["output"]["days"], len(run["output"]["daily"])) == (7, 7)


async def test_the_output_fits_the_output_schema_the_api_documents(app, counted):
    owner, _ = counted
    data = await app.graphql('{ plugin(slug: "analytics") { inputSchema outputSchema } }')
    schema = data["plugin"]["outputSchema"]
    assert schema == FIGURES_SCHEMA
    Draft202012Validator.check_schema(schema)
    for days, chat_id in ((7, None), (30, -2), (1, -404)):
        run = await run_plugin(app, owner, "analytics", window(days, chat_id))
        errors = [error.message for error in Draft202012Validator(schema).iter_errors(run["output"])]
        assert errors == [], (days, chat_id)
        assert set(run["output"]) == set(schema["properties"])  # every documented field, nothing more


@pytest.mark.parametrize(
    ("input", "path"),
    [({"days": 0}, "/days"), ({"days": 3651}, "/days"), ({"chatId": "-1"}, "/chatId"), ({"week": 1}, "/week")],
)
async def test_a_window_it_does_not_keep_is_refused_with_the_pointer(app, counted, input, path):
    owner, _ = counted
    error = await run_plugin_error(app, owner, "analytics", input)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["path"] for e in error["extensions"]["errors"]] == [path]


async def test_a_run_takes_a_range_and_answers_in_the_installs_zone(app, counted):
    owner, _ = counted
    await update_config(app, owner, "analytics", {"timezone": "Asia/Kathmandu"})
    run = await run_plugin(app, owner, "analytics", {"from": "2026-06-12", "to": "2026-06-15"})
    assert run["outcome"] == "SUCCEEDED", run
    output = run["output"]
    assert (output["timezone"], output["days"]) == ("Asia/Kathmandu", 4)
    assert [d["date"] for d in output["daily"]] == ["2026-06-12", "2026-06-13", "2026-06-14", "2026-06-15"]
    variables = {"from": "2026-06-12", "to": "2026-06-15"}
    queried_range = (await app.graphql(SUMMARY_RANGE, variables, user=owner))["analytics"]
    assert output["daily"] == queried_range["daily"] and output["hourly"] == queried_range["hourly"]
    assert output["period"] == queried_range["period"]
    assert output["previousPeriod"]["start"] == "2026-06-08"


@pytest.mark.parametrize(
    ("input", "path"),
    [({"from": "2026-06-12"}, "/to"), ({"days": 7, "from": "2026-06-12", "to": "2026-06-13"}, "/days")],
)
async def test_a_range_it_cannot_answer_fails_the_run(app, counted, input, path):
    owner, _ = counted
    run = await run_plugin(app, owner, "analytics", input)
    assert run["outcome"] == "FAILED" and "from" in (run["error"] or ""), run
