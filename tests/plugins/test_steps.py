"""Plugins as steps, over GraphQL: `runPlugin` runs the caller's install now (trigger STANDALONE) and
answers the finished run; `runChain` runs 1 to 10 installs in order, a step without input taking the
output of the step before (trigger WORKFLOW_STEP). Each step is a run like any other (executor,
history, executionCount, audit); everything sent is checked before anything runs, and a refusal
changes nothing. The built-ins' own runs: test_forward.py, test_welcome.py, tests/analytics/test_figures.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.logs import REDACTED
from app.plugins.contract import PluginContext, RunTrigger
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.models import RunRecord
from tests.conftest import AppFactory
from tests.support.forwarding import signed_by
from tests.support.installs_api import (
    MY_INSTALLS,
    RETRY,
    RUN_CHAIN,
    RUN_PLUGIN,
    audit_events,
    chain_steps,
    install_via_api,
    my_install,
    plugin_id,
    run_chain,
    run_chain_error,
    run_plugin,
    run_plugin_error,
    runs_of,
    toggle,
)
from tests.support.live import LiveApp, TestUser
from tests.support.outage import database_down, short_busy_timeout
from tests.support.plugins import GREET_INPUT, RecordingPlugin, StepPlugin
from tests.support.runtime import connect_bot, deliver, stored, wait_until_processed
from tests.support.telegram_updates import message_update

BOT_TOKEN = "123456789:AAHfW3oX_demo-token-abcdefghijklmnopq"
SHOUT_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"greeting": {"type": "string", "minLength": 1}, "name": {"type": "string"}},
    "required": ["greeting"],
}
SHOUT_OUTPUT: dict[str, Any] = {"type": "object", "properties": {"shout": {"type": "string"}}, "required": ["shout"]}


def shout(input: dict[str, Any], ctx: PluginContext) -> Any:
    return {"shout": input["greeting"].upper()}


def lie(input: dict[str, Any], ctx: PluginContext) -> Any:
    return {"greeting": 42, "name": input["name"]}  # its outputSchema says a string


@pytest.fixture
def greeter() -> StepPlugin:
    return StepPlugin("greeter")


@pytest.fixture
def shouter() -> StepPlugin:
    return StepPlugin("shouter", input_schema=SHOUT_INPUT, output_schema=SHOUT_OUTPUT, answer=shout)


@pytest.fixture
def liar() -> StepPlugin:
    return StepPlugin("liar", answer=lie)


@pytest.fixture
async def live(make_app: AppFactory, greeter, shouter, liar) -> LiveApp:
    handlers = [*(handler() for handler in BUILTIN_HANDLERS), greeter, shouter, liar, RecordingPlugin()]
    return await make_app(handlers=handlers)


@pytest.fixture
async def owner(live: LiveApp) -> TestUser:
    return await live.create_user("owner@example.com", "business")


async def installed(live: LiveApp, user: TestUser, *slugs: str) -> None:
    for slug in slugs:
        await install_via_api(live, user, slug)


async def footprint(live: LiveApp, user: TestUser) -> tuple[int, list[tuple[str, int]], int]:
    """What a run leaves behind: run records (anyone's), the user's executionCounts, their audit
    events of runs on demand."""
    with live.db():
        runs = await RunRecord.all().count()
    installs = (await live.graphql(MY_INSTALLS, user=user))["myPlugins"]
    counts = sorted((i["plugin"]["slug"], i["executionCount"]) for i in installs)
    audits = len(await audit_events(live, user, "plugin.run")) + len(await audit_events(live, user, "plugin.chain_run"))
    return runs, counts, audits


# --- runPlugin ------------------------------------------------------------------------------------


async def test_a_run_answers_the_finished_run_with_its_output_and_figures(live, owner, greeter):
    await installed(live, owner, "greeter")

    run = await run_plugin(live, owner, "greeter", {"name": "Ada"})

    assert (run["outcome"], run["trigger"], run["eventType"], run["eventLabel"]) == (
        "SUCCEEDED",
        "STANDALONE",
        "",
        "Run now",
    )
    assert run["output"] == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert (run["apiCalls"], run["tokensUsed"], run["workflowRunId"], run["stepIndex"]) == (0, None, None, None)
    assert (run["error"], run["chatId"], run["canRetry"], run["retryOf"]) == (None, None, False, None)
    assert run["durationMs"] >= 0
    [call] = greeter.calls
    assert call.user_id == owner.id
    assert call.input == {"name": "Ada", "punctuation": "!"}  # its schema's defaults filled in
    execution = call.execution
    assert (execution.trigger, execution.service.user_id) == (RunTrigger.STANDALONE, owner.id)
    assert (execution.workflow_run_id, execution.step_index, execution.previous_step_output) == (None, None, None)
    assert execution.variables == {}


async def test_tokens_used_are_what_the_plugin_reported_and_null_when_it_reported_none(live, owner, greeter):
    await installed(live, owner, "greeter")
    assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["tokensUsed"] is None
    greeter.tokens = 1234
    assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["tokensUsed"] == 1234
    greeter.tokens = 0
    assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["tokensUsed"] == 0  # zero is reported


@pytest.mark.parametrize("tokens", [-1, 2**31, 2**70, 12.5, "many", True, [1]])
async def test_tokens_used_that_are_no_count_are_as_not_reported_and_the_run_is_kept(live, owner, greeter, tokens):
    """A plugin's mistake in its metrics is no reason to lose its run, or its install's history."""
    await installed(live, owner, "greeter")
    greeter.tokens = tokens

    run = await run_plugin(live, owner, "greeter", {"name": "Ada"})

    assert (run["outcome"], run["tokensUsed"]) == ("SUCCEEDED", None)
    assert await runs_of(live, owner, "greeter") == [run]


async def test_an_output_that_breaks_the_output_schema_fails_the_run_naming_the_pointer(live, owner, liar):
    await installed(live, owner, "liar")

    run = await run_plugin(live, owner, "liar", {"name": "Ada"})

    assert run["outcome"] == "FAILED"
    assert run["error"] == (
        "OutputInvalid: The plugin's output does not fit its outputSchema: /greeting: 42 is not of type 'string'"
    )
    assert run["output"] is None
    assert len(liar.calls) == 1
    install = await my_install(live, owner, "liar")
    assert (install["executionCount"], install["lastError"]) == (1, run["error"])


async def test_a_failed_runs_storage_writes_never_land_and_a_succeeded_runs_do(live, owner, greeter):
    await installed(live, owner, "greeter")
    greeter.failing = True
    failed = await run_plugin(live, owner, "greeter", {"name": "Ada"})
    assert (failed["outcome"], failed["error"]) == ("FAILED", "RuntimeError: greeter failed on purpose")
    install_id = (await my_install(live, owner, "greeter"))["id"]
    assert await stored(live, install_id, "runs") is None
    greeter.failing = False
    await run_plugin(live, owner, "greeter", {"name": "Ada"})
    assert await stored(live, install_id, "runs") == 1


async def test_plugins_show_their_input_and_output_schemas_and_null_without(live):
    query = "query($slug: String!) { plugin(slug: $slug) { inputSchema outputSchema } }"
    greeter = (await live.graphql(query, {"slug": "greeter"}))["plugin"]
    assert greeter == {"inputSchema": GREET_INPUT, "outputSchema": StepPlugin().definition.output_schema}
    assert (await live.graphql(query, {"slug": "recorder"}))["plugin"] == {"inputSchema": None, "outputSchema": None}


async def test_standalone_runs_count_are_kept_in_the_history_and_audited(live, owner, greeter):
    await installed(live, owner, "greeter")
    succeeded = await run_plugin(live, owner, "greeter", {"name": "Ada"})
    greeter.failing = True
    failed = await run_plugin(live, owner, "greeter", {"name": "Bob"})

    assert (await my_install(live, owner, "greeter"))["executionCount"] == 2
    history = await runs_of(live, owner, "greeter")
    assert [run["id"] for run in history] == [failed["id"], succeeded["id"]]
    assert history == [failed, succeeded]  # the answer is the run as the history keeps it
    assert [(run["trigger"], run["outcome"], run["canRetry"]) for run in history] == [
        ("STANDALONE", "FAILED", False),
        ("STANDALONE", "SUCCEEDED", False),
    ]
    assert await audit_events(live, owner, "plugin.run") == [
        {"slug": "greeter", "runId": succeeded["id"], "outcome": "SUCCEEDED"},
        {"slug": "greeter", "runId": failed["id"], "outcome": "FAILED"},
    ]

    greeter.failing = False
    before = await footprint(live, owner)
    error = await live.graphql_error(RETRY, {"id": failed["id"]}, user=owner)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/runId", "message": "ran on demand"}]
    assert await footprint(live, owner) == before
    assert len(greeter.calls) == 2


async def test_an_install_its_breaker_paused_is_skipped_not_run(make_app, greeter, shouter):
    live = await make_app(handlers=[greeter, shouter], breaker_failures=2, breaker_backoff_seconds=600)
    owner = await live.create_user("breaker@example.com", "business")
    await installed(live, owner, "greeter", "shouter")
    greeter.failing = True
    for _ in range(2):
        assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["outcome"] == "FAILED"
    assert (await my_install(live, owner, "greeter"))["status"] == "FAILING"

    skipped = await run_plugin(live, owner, "greeter", {"name": "Ada"})
    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"}), "shouter"])

    assert (skipped["outcome"], skipped["trigger"], skipped["canRetry"]) == ("SKIPPED", "STANDALONE", False)
    assert [s["outcome"] for s in chain["steps"]] == ["SKIPPED", "SKIPPED"]
    assert chain["status"] == "FAILED"
    assert (len(greeter.calls), shouter.calls) == (2, [])
    assert (await my_install(live, owner, "greeter"))["executionCount"] == 2


# --- what runPlugin refuses, changing nothing ----------------------------------------------------


async def assert_refused(live: LiveApp, user: TestUser, slug: str, input: Any, code: str) -> dict[str, Any]:
    before = await footprint(live, user)
    error = await run_plugin_error(live, user, slug, input)
    assert error["extensions"]["code"] == code, error
    assert await footprint(live, user) == before
    return error


async def test_a_plugin_the_caller_has_not_installed_is_not_installed(live, owner, greeter):
    other = await live.create_user("other@example.com", "business")
    await installed(live, other, "greeter")  # someone else's install of it
    error = await assert_refused(live, owner, "greeter", {"name": "Ada"}, "NOT_INSTALLED")
    assert error["message"] == "The plugin is not installed"
    assert greeter.calls == []


async def test_a_disabled_install_is_not_run(live, owner, greeter):
    await installed(live, owner, "greeter")
    await toggle(live, owner, "greeter", False)
    error = await assert_refused(live, owner, "greeter", {"name": "Ada"}, "BAD_USER_INPUT")
    assert error["message"] == "Greeter is disabled: enable it to run it"
    assert error["extensions"]["errors"] == [{"path": "/pluginId", "message": "is disabled"}]
    assert greeter.calls == []


async def test_an_install_waiting_for_its_bot_is_not_run(live, owner, telegram):
    await installed(live, owner, "welcome")  # no bot connected
    error = await assert_refused(live, owner, "welcome", {"chatId": -1, "name": "Ada"}, "BAD_USER_INPUT")
    assert "is waiting for a gateway" in error["message"]
    assert telegram.sends() == []


async def test_an_install_that_needs_config_is_not_run(make_app):
    level = {"type": "object", "properties": {"level": {"type": "integer", "minimum": 1, "maximum": 100}}}
    v1 = await make_app(handlers=[StepPlugin("tuned", config_schema=level)])
    owner = await v1.create_user("tuner@example.com", "business")
    await install_via_api(v1, owner, "tuned", {"level": 50})
    await v1.stop()
    v2_plugin = StepPlugin("tuned")
    lower = {"type": "object", "properties": {"level": {"type": "integer", "minimum": 1, "maximum": 10}}}
    v2_plugin.definition = replace(v2_plugin.definition, version="2.0.0", config_schema=lower)
    v2 = await make_app(handlers=[v2_plugin])
    assert (await my_install(v2, owner, "tuned"))["status"] == "NEEDS_CONFIG"

    error = await assert_refused(v2, owner, "tuned", {"name": "Ada"}, "BAD_USER_INPUT")
    assert error["message"].startswith("Tuned needs its settings changed: ")
    assert error["extensions"]["errors"] == [{"path": "/pluginId", "message": "needs its settings changed"}]
    assert v2_plugin.calls == []


async def test_a_plugin_without_an_input_schema_cannot_be_run_on_demand(live, owner, telegram):
    await connect_bot(live, owner, telegram)
    await installed(live, owner, "recorder")
    error = await assert_refused(live, owner, "recorder", {}, "BAD_USER_INPUT")
    assert error["message"] == "Recorder cannot be run on demand: it has no inputSchema"
    assert error["extensions"]["errors"] == [
        {"path": "/pluginId", "message": "takes no input: it runs only on its events"}
    ]


@pytest.mark.parametrize(
    ("input", "errors"),
    [
        (None, [("/name", "required")]),
        ({}, [("/name", "required")]),
        ({"name": ""}, [("/name", "minLength")]),
        ({"name": "x" * 65}, [("/name", "maxLength")]),
        ({"name": 7, "punctuation": "!!!!"}, [("/name", "type"), ("/punctuation", "maxLength")]),
        ({"name": "Ada", "shoe": 44}, [("/shoe", "additionalProperties")]),
        ({"name": "Ada", "punctuation": None}, [("/punctuation", "type")]),
        ([{"name": "Ada"}], [("", None)]),
        ("Ada", [("", None)]),
    ],
    ids=["null", "empty", "too-short", "too-long", "two-at-once", "unknown", "null-value", "a-list", "a-string"],
)
async def test_invalid_input_is_refused_with_a_pointer_to_each_problem(live, owner, greeter, input, errors):
    await installed(live, owner, "greeter")
    error = await assert_refused(live, owner, "greeter", input, "BAD_USER_INPUT")
    assert [(e["path"], e.get("keyword")) for e in error["extensions"]["errors"]] == errors
    assert error["message"].startswith(("Invalid input: ", "Input must be an object"))
    assert greeter.calls == []


async def test_an_invalid_secret_input_is_refused_without_quoting_it(make_app):
    secretive = StepPlugin("secretive", input_schema=SECRETIVE_INPUT, output_schema=None)
    live = await make_app(handlers=[secretive])
    owner = await live.create_user("secretive@example.com", "business")
    await installed(live, owner, "secretive")
    for password in (["hunter2-is-my-password"], 123456789):
        error = await assert_refused(live, owner, "secretive", {"password": password}, "BAD_USER_INPUT")
        assert error["extensions"]["errors"] == [
            {"path": "/password", "message": "must be of type string", "keyword": "type", "params": {"type": "string"}}
        ]
        assert "hunter2" not in json.dumps(error) and "123456789" not in json.dumps(error)


async def test_running_needs_an_api_token(live, owner, greeter):
    await installed(live, owner, "greeter")
    error = await live.graphql_error(RUN_PLUGIN, {"id": await plugin_id(live, "greeter"), "input": {"name": "A"}})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert greeter.calls == []


# --- RUNS_PER_MINUTE -------------------------------------------------------------------------------


@pytest.fixture
async def limited(make_app: AppFactory, greeter, shouter) -> LiveApp:
    """Three runs on demand a "minute" per user, the minute made an hour: no turn comes back while a
    test runs, however slow the machine."""
    live = await make_app(handlers=[greeter, shouter], runs_per_minute=3)
    live.platform.steps.window_seconds = 3600.0
    return live


async def test_runs_past_the_limit_are_rate_limited_and_change_nothing(limited, greeter):
    owner = await limited.create_user("busy@example.com", "business")
    await installed(limited, owner, "greeter")
    for _ in range(3):
        assert (await run_plugin(limited, owner, "greeter", {"name": "Ada"}))["outcome"] == "SUCCEEDED"

    before = await footprint(limited, owner)
    error = await run_plugin_error(limited, owner, "greeter", {"name": "Ada"})
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["message"].startswith("Runs on demand are limited to 3 a minute (a chain counts each of its steps)")
    assert await footprint(limited, owner) == before
    assert len(greeter.calls) == 3

    other = await limited.create_user("calm@example.com", "business")  # a limit per user
    await installed(limited, other, "greeter")
    assert (await run_plugin(limited, other, "greeter", {"name": "Bob"}))["outcome"] == "SUCCEEDED"


async def test_a_chain_counts_each_of_its_steps(limited, greeter, shouter):
    owner = await limited.create_user("busy@example.com", "business")
    await installed(limited, owner, "greeter", "shouter")
    chain = await run_chain(limited, owner, [("greeter", {"name": "Ada"}), "shouter"])
    assert chain["status"] == "SUCCEEDED"
    assert (await run_plugin(limited, owner, "greeter", {"name": "Ada"}))["outcome"] == "SUCCEEDED"

    error = await run_plugin_error(limited, owner, "greeter", {"name": "Ada"})
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert (len(greeter.calls), len(shouter.calls)) == (2, 1)


async def test_a_refused_chain_takes_no_turn(limited, greeter, shouter):
    owner = await limited.create_user("busy@example.com", "business")
    await installed(limited, owner, "greeter", "shouter")
    await run_plugin(limited, owner, "greeter", {"name": "Ada"})  # two turns left

    before = await footprint(limited, owner)
    error = await run_chain_error(limited, owner, [("greeter", {"name": "Ada"}), "shouter", "shouter"])
    assert error["extensions"]["code"] == "RATE_LIMITED"
    never = await run_chain_error(limited, owner, [("greeter", {"name": "A"})] + ["shouter"] * 3)
    assert never["message"].endswith("4 runs at once can never fit")
    assert await footprint(limited, owner) == before
    assert (len(greeter.calls), shouter.calls) == (1, [])

    for _ in range(2):  # the refused chains took none of the two turns left
        assert (await run_plugin(limited, owner, "greeter", {"name": "Ada"}))["outcome"] == "SUCCEEDED"
    assert (await run_plugin_error(limited, owner, "greeter", {"name": "Ada"}))["extensions"]["code"] == "RATE_LIMITED"


async def test_input_refused_takes_no_turn(make_app, greeter):
    live = await make_app(handlers=[greeter], runs_per_minute=1)
    live.platform.steps.window_seconds = 3600.0
    owner = await live.create_user("once@example.com", "business")
    await installed(live, owner, "greeter")
    assert (await run_plugin_error(live, owner, "greeter", {"name": ""}))["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["outcome"] == "SUCCEEDED"


# --- runChain -------------------------------------------------------------------------------------


async def test_each_step_takes_the_output_of_the_one_before_and_is_a_run_of_its_own(live, owner, greeter, shouter):
    await installed(live, owner, "greeter", "shouter")

    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"}), "shouter"], variables={"team": "ops"})

    assert chain["status"] == "SUCCEEDED"
    assert chain["output"] == {"shout": "HELLO, ADA!"}
    first, second = chain["steps"]
    assert [(s["outcome"], s["trigger"], s["eventLabel"]) for s in chain["steps"]] == [
        ("SUCCEEDED", "WORKFLOW_STEP", "Chain step"),
        ("SUCCEEDED", "WORKFLOW_STEP", "Chain step"),
    ]
    assert [(s["workflowRunId"], s["stepIndex"]) for s in chain["steps"]] == [(chain["id"], 0), (chain["id"], 1)]
    assert first["output"] == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert second["output"] == chain["output"]
    assert [s["canRetry"] for s in chain["steps"]] == [False, False]

    [greeted], [shouted] = greeter.calls, shouter.calls
    assert shouted.input == first["output"]  # no input given: the step before's output
    for n, (call, previous) in enumerate([(greeted, None), (shouted, first["output"])]):
        execution = call.execution
        assert (execution.trigger, execution.workflow_run_id, execution.step_index) == (
            RunTrigger.WORKFLOW_STEP,
            chain["id"],
            n,
        )
        assert execution.previous_step_output == previous
        assert execution.variables == {"team": "ops"}
        assert execution.service.user_id == owner.id

    # Each step is in its own install's history and counts there; the chain is one audit event.
    assert await runs_of(live, owner, "greeter") == [first]
    assert await runs_of(live, owner, "shouter") == [second]
    assert [(await my_install(live, owner, slug))["executionCount"] for slug in ("greeter", "shouter")] == [1, 1]
    assert await audit_events(live, owner, "plugin.chain_run") == [
        {"workflowRunId": chain["id"], "slugs": ["greeter", "shouter"], "status": "SUCCEEDED"}
    ]
    assert await audit_events(live, owner, "plugin.run") == []


async def test_a_step_given_input_runs_on_it_and_still_sees_the_output_before(live, owner, greeter):
    await installed(live, owner, "greeter")
    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"}), ("greeter", {"name": "Bob"})])
    assert chain["output"] == {"greeting": "Hello, Bob!", "name": "Bob"}
    assert greeter.calls[1].input == {"name": "Bob", "punctuation": "!"}
    assert greeter.calls[1].execution.previous_step_output == {"greeting": "Hello, Ada!", "name": "Ada"}
    assert (await my_install(live, owner, "greeter"))["executionCount"] == 2
    assert [run["stepIndex"] for run in await runs_of(live, owner, "greeter")] == [1, 0]


async def test_the_first_failure_stops_the_chain_and_the_rest_are_not_run(live, owner, greeter, shouter):
    await installed(live, owner, "greeter", "shouter")
    greeter.failing = True

    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"}), "shouter", ("greeter", {"name": "Bob"})])

    assert (chain["status"], chain["output"]) == ("FAILED", None)
    assert [(s["outcome"], s["stepIndex"]) for s in chain["steps"]] == [("FAILED", 0), ("SKIPPED", 1), ("SKIPPED", 2)]
    assert chain["steps"][0]["error"] == "RuntimeError: greeter failed on purpose"
    assert [s["error"] for s in chain["steps"][1:]] == ["Not run: step 1 of the chain did not succeed"] * 2
    assert [s["canRetry"] for s in chain["steps"]] == [False, False, False]
    assert (len(greeter.calls), shouter.calls) == (1, [])
    # Not run, not counted; but kept in the history, where the chain's shape can be read again.
    assert [(await my_install(live, owner, slug))["executionCount"] for slug in ("greeter", "shouter")] == [1, 0]
    assert [run["outcome"] for run in await runs_of(live, owner, "greeter")] == ["SKIPPED", "FAILED"]
    assert [run["outcome"] for run in await runs_of(live, owner, "shouter")] == ["SKIPPED"]
    assert await audit_events(live, owner, "plugin.chain_run") == [
        {"workflowRunId": chain["id"], "slugs": ["greeter", "shouter", "greeter"], "status": "FAILED"}
    ]
    greeter.failing = False
    before = await footprint(live, owner)
    for step in chain["steps"][:2]:  # run again as a chain, with its input: not one step alone
        error = await live.graphql_error(RETRY, {"id": step["id"]}, user=owner)
        assert error["extensions"]["errors"] == [{"path": "/runId", "message": "ran on demand"}]
    assert await footprint(live, owner) == before


async def test_a_previous_output_that_does_not_fit_fails_the_step_naming_the_pointer(live, owner, greeter, shouter):
    await installed(live, owner, "greeter", "shouter")

    chain = await run_chain(live, owner, [("shouter", {"greeting": "hi"}), "greeter", "shouter"])

    assert chain["status"] == "FAILED"
    assert [s["outcome"] for s in chain["steps"]] == ["SUCCEEDED", "FAILED", "SKIPPED"]
    assert chain["steps"][1]["error"] == (
        "The previous step's output is not valid input for this step: "
        "Invalid input: /name: is required; /shout: is not a known field"
    )
    assert greeter.calls == [] and len(shouter.calls) == 1


async def test_an_output_that_breaks_its_schema_stops_the_chain(live, owner, liar, shouter):
    await installed(live, owner, "liar", "shouter")
    chain = await run_chain(live, owner, [("liar", {"name": "Ada"}), "shouter"])
    assert [s["outcome"] for s in chain["steps"]] == ["FAILED", "SKIPPED"]
    assert "/greeting: 42 is not of type 'string'" in chain["steps"][0]["error"]
    assert shouter.calls == []


async def test_a_chain_past_its_time_is_cut_and_the_rest_not_run(make_app, greeter, shouter):
    live = await make_app(handlers=[greeter, shouter], chain_max_seconds=0.3)
    owner = await live.create_user("slow@example.com", "business")
    await installed(live, owner, "greeter", "shouter")
    greeter.stalls = True  # never released: the chain's time runs out first

    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"}), "shouter"])

    assert [s["outcome"] for s in chain["steps"]] == ["FAILED", "SKIPPED"]
    assert chain["steps"][0]["error"] == "Timed out after 0.3 s"
    assert shouter.calls == []


# --- what runChain refuses: nothing runs -------------------------------------------------------


async def assert_chain_refused(
    live: LiveApp, user: TestUser, steps: list[dict[str, Any]], variables: Any, code: str
) -> dict[str, Any]:
    before = await footprint(live, user)
    error = await live.graphql_error(RUN_CHAIN, {"steps": steps, "variables": variables}, user=user)
    assert error["extensions"]["code"] == code, error
    assert await footprint(live, user) == before
    return error


@pytest.mark.parametrize("count", [0, 11, 1_000])
async def test_a_chain_of_no_steps_or_more_than_ten_is_refused(live, owner, greeter, count):
    await installed(live, owner, "greeter")
    steps = await chain_steps(live, ["greeter"] * count)
    error = await assert_chain_refused(live, owner, steps, None, "BAD_USER_INPUT")
    assert error["extensions"]["errors"] == [{"path": "/steps", "message": "must list 1 to 10 steps"}]
    assert greeter.calls == []


async def test_a_chain_of_10000_steps_is_refused_at_the_door(live, owner, greeter):
    """Its variables alone are larger than a request may send: refused before they are read."""
    await installed(live, owner, "greeter")
    steps = await chain_steps(live, ["greeter"] * 10_000)
    error = await assert_chain_refused(live, owner, steps, None, "REQUEST_TOO_LARGE")
    assert "larger than" in error["message"]
    assert greeter.calls == []


async def test_ten_steps_run(live, owner, greeter):
    await installed(live, owner, "greeter")
    chain = await run_chain(live, owner, [("greeter", {"name": "Ada"})] * 10)
    assert [s["outcome"] for s in chain["steps"]] == ["SUCCEEDED"] * 10


async def test_someone_elses_install_in_the_chain_refuses_it_whole(live, owner, greeter, shouter):
    other = await live.create_user("other@example.com", "business")
    await installed(live, owner, "greeter")
    await installed(live, other, "shouter")
    steps = await chain_steps(live, [("greeter", {"name": "Ada"}), "shouter"])
    error = await assert_chain_refused(live, owner, steps, None, "NOT_INSTALLED")
    assert error["message"] == "The plugin is not installed (step 2)"
    assert (greeter.calls, shouter.calls) == ([], [])


async def test_a_disabled_step_refuses_the_chain_naming_it(live, owner, greeter, shouter):
    await installed(live, owner, "greeter", "shouter")
    await toggle(live, owner, "shouter", False)
    steps = await chain_steps(live, [("greeter", {"name": "Ada"}), "shouter"])
    error = await assert_chain_refused(live, owner, steps, None, "BAD_USER_INPUT")
    assert error["extensions"]["errors"] == [{"path": "/steps/1/pluginId", "message": "is disabled"}]
    assert greeter.calls == []


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("step_input", "variables", "path", "message"),
    [
        ({"name": ""}, None, "/steps/1/input/name", "'' should be non-empty"),
        (
            {"name": "Ada", "deep": nested(100)},
            None,
            "/steps/1/input/deep/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0",
            "nests deeper than 32 levels",
        ),
        ({"name": "x" * 70_000}, None, "/steps/1/input", "is larger than 65536 bytes as JSON"),
        ({"name": "Ada"}, [1, 2], "/variables", "must be an object"),
        ({"name": "Ada"}, "ops", "/variables", "must be an object"),
        ({"name": "Ada"}, {"blob": "x" * 20_000}, "/variables", "is larger than 16384 bytes as JSON"),
        (
            {"name": "Ada"},
            {"deep": nested(100)},
            "/variables/deep/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0",
            "nests deeper than 32 levels",
        ),
    ],
    ids=[
        "invalid",
        "deep",
        "oversized",
        "variables-a-list",
        "variables-a-string",
        "variables-too-large",
        "variables-deep",
    ],
)
async def test_hostile_input_refuses_the_chain_with_a_pointer_and_nothing_runs(
    live, owner, greeter, step_input, variables, path, message
):
    await installed(live, owner, "greeter")
    steps = await chain_steps(live, [("greeter", {"name": "Ada"}), ("greeter", step_input)])
    error = await assert_chain_refused(live, owner, steps, variables, "BAD_USER_INPUT")
    [problem] = error["extensions"]["errors"]
    assert (problem["path"], problem["message"]) == (path, message)
    assert greeter.calls == []


async def post_raw(live: LiveApp, user: TestUser, body: str) -> tuple[int, dict[str, Any]]:
    """A GraphQL request whose body is this JSON text, as a client that writes NaN would send it."""
    assert live.http is not None
    headers = {**user.auth, "Content-Type": "application/json", "Accept": "application/graphql-response+json"}
    response = await live.http.post("/graphql", content=body.encode(), headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("where", "raw", "path"),
    [
        ("variables", "NaN", "/variables/rate"),
        ("variables", "Infinity", "/variables/rate"),
        ("input", "NaN", "/steps/0/input/rate"),
        ("input", "-Infinity", "/steps/0/input/rate"),
    ],
)
async def test_nan_sent_as_raw_json_refuses_the_chain_and_nothing_runs(live, owner, greeter, where, raw, path):
    await installed(live, owner, "greeter")
    steps = await chain_steps(
        live, [("greeter", {"name": "Ada", "rate": "@RAW@"} if where == "input" else {"name": "Ada"})]
    )
    variables = {"rate": "@RAW@"} if where == "variables" else None
    body = json.dumps({"query": RUN_CHAIN, "variables": {"steps": steps, "variables": variables}})
    before = await footprint(live, owner)

    status, answer = await post_raw(live, owner, body.replace('"@RAW@"', raw))

    assert status < 500
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["path"] for e in error["extensions"]["errors"]] == [path]
    assert await footprint(live, owner) == before
    assert greeter.calls == []


async def test_input_nested_200000_deep_is_refused_without_a_fault_and_nothing_runs(live, owner, greeter):
    await installed(live, owner, "greeter")
    steps = await chain_steps(live, [("greeter", {"name": "Ada", "deep": "@RAW@"})])
    body = json.dumps({"query": RUN_CHAIN, "variables": {"steps": steps}})
    before = await footprint(live, owner)

    status, answer = await post_raw(live, owner, body.replace('"@RAW@"', "[" * 200_000 + "]" * 200_000))

    assert status < 500 and answer["errors"], answer
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(answer)
    assert await footprint(live, owner) == before
    assert greeter.calls == []


# --- a run's output, bounded and redacted end to end ------------------------------------------------


SECRETIVE_CONFIG = {
    "type": "object",
    "properties": {"apiKey": {"type": "string", "writeOnly": True, "minLength": 8}},
    "required": ["apiKey"],
}
SECRETIVE_INPUT = {
    "type": "object",
    "properties": {"password": {"type": "string", "writeOnly": True}, "note": {"type": "string"}},
}


def tell_all(input: dict[str, Any], ctx: PluginContext) -> Any:
    return {
        "config": f"my key is {ctx.config['apiKey']}",
        "input": [f"the password was {input.get('password')}"],
        "note": input.get("note"),
        ctx.config["apiKey"]: "a key as a key",
    }


def fail_telling_all(input: dict[str, Any], ctx: PluginContext) -> Any:
    raise RuntimeError(f"key {ctx.config['apiKey']}, password {input.get('password')}, {input.get('note')}")


@pytest.fixture
def odd_plugins() -> dict[str, StepPlugin]:
    free = {"type": "object", "properties": {"note": {"type": "string"}}}
    return {
        "big": StepPlugin("big", input_schema=free, output_schema=None, answer=lambda i, c: "x" * 100_000),
        "secretive": StepPlugin(
            "secretive",
            input_schema=SECRETIVE_INPUT,
            output_schema=None,
            config_schema=SECRETIVE_CONFIG,
            answer=tell_all,
        ),
        "blabber": StepPlugin(
            "blabber",
            input_schema=SECRETIVE_INPUT,
            output_schema=None,
            config_schema=SECRETIVE_CONFIG,
            answer=fail_telling_all,
        ),
        "odd": StepPlugin(
            "odd",
            input_schema=free,
            output_schema=None,
            answer=lambda i, c: {"nul": "a\x00b", "surrogate": "\ud800", "huge": 10**5000, "nan": float("nan")},
        ),
    }


@pytest.fixture
async def outputs(make_app: AppFactory, odd_plugins) -> LiveApp:
    return await make_app(handlers=list(odd_plugins.values()))


async def test_an_output_larger_than_16_kb_is_kept_cut_with_a_marker(outputs):
    owner = await outputs.create_user("big@example.com", "business")
    await installed(outputs, owner, "big")

    run = await run_plugin(outputs, owner, "big")

    assert run["outcome"] == "SUCCEEDED"
    assert run["output"]["$truncated"] is True
    assert run["output"]["bytes"] == 100_002
    assert run["output"]["preview"].startswith('"xxxx')
    assert len(json.dumps(run["output"], separators=(",", ":")).encode()) <= 16 * 1024
    assert await runs_of(outputs, owner, "big") == [run]


async def test_tokens_and_secret_settings_and_inputs_never_show_in_an_output(outputs):
    owner = await outputs.create_user("secretive@example.com", "business")
    await install_via_api(outputs, owner, "secretive", {"apiKey": "k3y-of-the-install-123"})
    input = {"password": "input-password-456", "note": f"the bot: {BOT_TOKEN}"}

    run = await run_plugin(outputs, owner, "secretive", input)

    assert run["outcome"] == "SUCCEEDED"
    assert run["output"] == {
        "config": f"my key is {REDACTED}",
        "input": [f"the password was {REDACTED}"],
        "note": f"the bot: {REDACTED}",
        REDACTED: "a key as a key",
    }
    shown = json.dumps([await runs_of(outputs, owner, "secretive"), await audit_events(outputs, owner, "plugin.run")])
    for secret in ("k3y-of-the-install-123", "input-password-456", BOT_TOKEN):
        assert secret not in shown


async def test_a_failed_runs_error_never_shows_tokens_or_secrets_in_the_api_or_the_log(outputs, caplog):
    owner = await outputs.create_user("blabber@example.com", "business")
    await install_via_api(outputs, owner, "blabber", {"apiKey": "k3y-of-the-install-123"})
    input = {"password": "input-password-456", "note": f"the bot: {BOT_TOKEN}"}

    run = await run_plugin(outputs, owner, "blabber", input)

    assert run["outcome"] == "FAILED"
    assert run["error"] == f"RuntimeError: key {REDACTED}, password {REDACTED}, the bot: {REDACTED}"
    install = await my_install(outputs, owner, "blabber")
    assert install["lastError"] == run["error"]
    assert "plugin run failed: " + run["error"] in caplog.text
    shown = json.dumps([await runs_of(outputs, owner, "blabber"), install]) + caplog.text
    for secret in ("k3y-of-the-install-123", "input-password-456", BOT_TOKEN):
        assert secret not in shown


async def test_an_output_no_database_keeps_as_is_is_kept_readable(outputs):
    """NUL (refused by PostgreSQL's jsonb), a lone surrogate, an integer of 5,000 digits, NaN: the
    plugin answered them; its run is kept, on both databases."""
    owner = await outputs.create_user("odd@example.com", "business")
    await installed(outputs, owner, "odd")

    run = await run_plugin(outputs, owner, "odd")

    assert run["outcome"] == "SUCCEEDED"
    assert run["output"] == {"nul": "a\ufffdb", "surrogate": "\ufffd", "huge": "[integer too large]", "nan": "nan"}
    assert await runs_of(outputs, owner, "odd") == [run]


# --- end to end: this week's figures, delivered by the next step -----------------------------------

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
SECRET = "chain-signing-secret-0123456789"
ANALYTICS = """query($days: Int!) { analytics(days: $days) { totalMessages messagesThisWeek
  period { start end totalMessages uniqueUsers } daily(days: $days) { date messages } } }"""


async def figures_and_forward(app: LiveApp, telegram, stand_in) -> tuple[TestUser, Any]:
    """A user whose bot's messages were counted by Channel Analytics (the clock at NOW), with
    forward installed to the stand-in."""
    app.platform.clock = lambda: NOW
    owner = await app.create_user("weekly@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install_via_api(app, owner, "analytics")
    await install_via_api(app, owner, "forward", {"url": stand_in.url("/weekly"), "signingSecret": SECRET})
    for n, days_ago in enumerate([0, 0, 1, 3, 6, 8], start=1):
        update = message_update(n, chat_id=-(n % 2) - 1, sender_id=100 + n % 3)
        update["message"]["date"] = int((NOW - timedelta(days=days_ago)).timestamp())
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    stand_in.reset()  # forward delivered those messages too: only the chain's delivery is looked at
    return owner, bot


async def test_this_weeks_figures_are_delivered_signed_by_the_next_step(forwarding_app, telegram, stand_in):
    app = forwarding_app
    owner, bot = await figures_and_forward(app, telegram, stand_in)
    stand_in.respond(204, body=b"")

    chain = await run_chain(app, owner, [("analytics", {"days": 7}), "forward"])

    assert chain["status"] == "SUCCEEDED", chain
    figures, delivered = chain["steps"]
    assert chain["output"] == delivered["output"]
    assert delivered["output"]["status"] == 204 and delivered["apiCalls"] == 1
    summary = (await app.graphql(ANALYTICS, {"days": 7}, user=owner))["analytics"]
    assert figures["output"]["period"] == {**figures["output"]["period"], **summary["period"]}
    assert figures["output"]["messagesThisWeek"] == summary["messagesThisWeek"] == 5

    [received] = stand_in.received
    assert received.path == "/weekly"
    assert signed_by(received, SECRET)
    body = json.loads(received.body)
    assert body["text"] == figures["output"]["text"]
    assert body["text"].startswith("The last 7 days (2026-06-09 to 2026-06-15): 5 messages from ")
    assert body["data"] == {key: value for key, value in figures["output"].items() if key != "text"}
    assert (body["test"], body["workflowRunId"], body["stepIndex"], body["gatewayId"]) == (
        False,
        chain["id"],
        1,
        bot.gateway_id,
    )
    assert [(run["workflowRunId"], run["stepIndex"]) for run in await runs_of(app, owner, "analytics")][0] == (
        chain["id"],
        0,
    )
    assert [(run["workflowRunId"], run["stepIndex"]) for run in await runs_of(app, owner, "forward")][0] == (
        chain["id"],
        1,
    )


async def test_a_step_gets_the_whole_output_before_it_not_the_records_cut_of_it(forwarding_app, telegram, stand_in):
    """A year of daily figures is more than a run's record keeps (16 KB): the next step still
    gets all of them, not the record's `$truncated` preview."""
    app = forwarding_app
    owner, _ = await figures_and_forward(app, telegram, stand_in)

    chain = await run_chain(app, owner, [("analytics", {"days": 365}), "forward"])

    assert chain["status"] == "SUCCEEDED", chain
    assert chain["steps"][0]["output"]["$truncated"] is True  # the record's copy is cut
    [received] = stand_in.received
    body = json.loads(received.body)
    assert body["text"].startswith("The last 365 days (2025-06-16 to 2026-06-15): 6 messages from ")
    assert len(body["data"]["daily"]) == 365
    assert sum(day["messages"] for day in body["data"]["daily"]) == 6


# --- the database gone ------------------------------------------------------------------------------


async def test_while_the_database_is_gone_nothing_runs_and_once_it_is_back_runs_go_on(
    make_app, faulty_database_url, greeter, shouter
):
    live = await make_app(handlers=[greeter, shouter], database_url=faulty_database_url)
    with live.db() as db:
        await short_busy_timeout(db)  # SQLite: a locked write fails at once, not after 5 s
    owner = await live.create_user("outage@example.com", "business")
    await installed(live, owner, "greeter", "shouter")
    run = {"id": await plugin_id(live, "greeter"), "input": {"name": "Ada"}}
    chain = {"steps": await chain_steps(live, [("greeter", {"name": "Ada"}), "shouter"])}
    before = await footprint(live, owner)

    async with database_down(faulty_database_url):
        for query, variables in [(RUN_PLUGIN, run), (RUN_CHAIN, chain)]:
            headers = {**owner.auth, "Accept": "application/json"}
            response = await live.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
            if response.status_code == 503:  # PostgreSQL: the caller's token cannot be read
                assert response.headers["retry-after"] == "5"
            else:  # SQLite, locked: the token is read, the run's first write fails
                [error] = response.json()["errors"]
                assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR", error
    assert (greeter.calls, shouter.calls) == ([], [])
    assert await footprint(live, owner) == before

    assert (await run_plugin(live, owner, "greeter", {"name": "Ada"}))["outcome"] == "SUCCEEDED"
    assert (await run_chain(live, owner, [("greeter", {"name": "Bob"}), "shouter"]))["status"] == "SUCCEEDED"
