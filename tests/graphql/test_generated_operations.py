"""Every query and mutation, called with generated hostile arguments, by every kind of caller,
over POST, GET and the websocket. Whatever arrives:

- no 500 and no INTERNAL_SERVER_ERROR; every answer is strict JSON (no NaN), every error has a code;
- a refused call (any error) changes nothing, in the database or in Telegram's webhooks, and a
  query changes nothing at all;
- after a call that succeeds, what the users read back is still strict JSON without errors;
- /healthz answers 200 after every call.

The operations are read off the schema, so a new field is covered the day it is added.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.graphql.schema import build_schema
from app.settings import Settings
from tests.support.hostile import generated_settings, report_or_fail
from tests.support.hostile_graphql import (
    Call,
    RootField,
    calls,
    get_params,
    request_text,
    root_fields,
    websocket_message,
)
from tests.support.hostile_world import World
from tests.support.oracle import (
    differences,
    graphql_error_problems,
    graphql_http_problems,
    is_refused,
    snapshot,
    strict_json,
)

ROOT_FIELDS = root_fields(build_schema(Settings())._schema)
MAX_GET_URL = 6_000  # longer GETs go as POST: proxies and uvicorn cap the request line
ACCEPT = "application/graphql-response+json, application/json"
READ_BACK = (
    "{ me { id email plan pluginLimit } myPlugins { id config isEnabled executionCount lastError "
    "plugin { id slug configSchema installed } } myGateways { id name botUsername webhookUrl isActive } "
    "auditLog(limit: 200) { action targetType targetId metadata } }"
)
PROTOCOL = Subprotocol("graphql-transport-ws")


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    refused: bool = True
    summary: str = ""
    label: str = ""  # how it ended, for hypothesis' statistics: "POST 200 ok", "websocket NOT_FOUND", …


def first_code(errors: Any) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str((errors[0].get("extensions") or {}).get("code"))
    return "ok"


@pytest.fixture
async def world(make_app, telegram) -> World:
    return await World.create(await make_app(), telegram)


def test_every_root_field_of_the_schema_is_covered():
    names = {root.name for root in ROOT_FIELDS}
    assert {"plugins", "plugin", "myPlugins", "auditLog", "myGateways", "me"} <= names
    assert {"installPlugin", "uninstallPlugin", "updatePluginConfig", "togglePlugin"} <= names
    assert {"connectTelegramBot", "disconnectGateway"} <= names


@dataclass
class Prepared:
    """A call on the wire, encoded before the clock starts (the client shares the server's loop)."""

    method: str
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] | None = None
    websocket_init: str = ""
    websocket_message: str = ""


def prepare(world: World, call: Call) -> Prepared:
    authorization = world.authorization(call.caller)
    if call.transport == "websocket":
        payload = {} if authorization is None else {"Authorization": authorization}
        init = json.dumps({"type": "connection_init", "payload": payload})
        return Prepared("WS", {}, websocket_init=init, websocket_message=websocket_message(call, world.resolve))
    headers = {"Accept": ACCEPT}
    if authorization is not None:
        headers["Authorization"] = authorization
    if call.transport == "get":
        params = get_params(call, world.resolve)
        if len(urlencode(params)) <= MAX_GET_URL:
            return Prepared("GET", headers, params=params)
    headers["Content-Type"] = "application/json"
    return Prepared("POST", headers, body=request_text(call, world.resolve).encode("ascii"))


async def send_http(world: World, call: Call, prepared: Prepared) -> Outcome:
    http = world.app.http
    assert http is not None
    if prepared.method == "GET":
        response = await http.get("/graphql", params=prepared.params, headers=prepared.headers)
    else:
        response = await http.post("/graphql", content=prepared.body, headers=prepared.headers)
    problems, parsed = graphql_http_problems(
        response.status_code, response.headers.get("content-type", ""), response.content
    )
    summary = f"{prepared.method} -> {response.status_code} {response.content[:300]!r}"
    code = first_code(parsed.get("errors")) if isinstance(parsed, dict) else "-"
    label = f"{prepared.method} {response.status_code} {code}"
    return Outcome(problems, is_refused(response.status_code, parsed), summary, label)


async def send_websocket(world: World, call: Call, prepared: Prepared) -> Outcome:
    url = world.app.url.replace("http://", "ws://") + "/graphql"
    outcome = Outcome()
    received: list[str] = []
    async with connect(url, subprotocols=[PROTOCOL], max_size=None, compression=None, open_timeout=10) as ws:
        try:
            await ws.send(prepared.websocket_init)
            ack = strict_json(await asyncio.wait_for(ws.recv(), 60))
            if ack.get("type") != "connection_ack":
                outcome.problems.append(f"expected connection_ack, got {ack!r:.200}")
                return outcome
            await ws.send(prepared.websocket_message)
            while True:
                text = await asyncio.wait_for(ws.recv(), 30)
                received.append(str(text)[:300])
                try:
                    message = strict_json(text)
                except ValueError as exc:
                    outcome.problems.append(f"a message that is not strict JSON ({exc}): {str(text)[:300]!r}")
                    break
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    outcome.problems.extend(graphql_error_problems(payload.get("errors")))
                    outcome.refused = bool(payload.get("errors")) or payload.get("data") is None
                    outcome.label = f"websocket {first_code(payload.get('errors'))}"
                elif kind == "error":
                    outcome.problems.extend(graphql_error_problems(message.get("payload")))
                    outcome.refused = True
                    outcome.label = f"websocket error {first_code(message.get('payload'))}"
                    break
                elif kind == "complete":
                    break
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            received.append(f"closed {code}")
            outcome.label = f"websocket closed {code}"
            expected_rejection = code == 4403 and call.caller in ("bad token", "empty bearer", "basic auth")
            # 1009: too big; 4400: a malformed message. Anything else is the server failing.
            if not expected_rejection and code not in (1009, 4400):
                outcome.problems.append(f"websocket closed with {code} ({closed.rcvd and closed.rcvd.reason!r})")
            outcome.refused = True
        except TimeoutError:
            outcome.problems.append("no answer on the websocket within 30 s")
    outcome.summary = "websocket: " + " | ".join(received)
    return outcome


async def read_back_problems(world: World) -> list[str]:
    """What the users see after a call that went through must still be readable."""
    problems: list[str] = []
    assert world.app.http is not None
    for user in (world.mine, world.theirs):
        headers = {"Accept": ACCEPT, "Content-Type": "application/json", **user.auth}
        response = await world.app.http.post("/graphql", content=json.dumps({"query": READ_BACK}), headers=headers)
        found, parsed = graphql_http_problems(
            response.status_code, response.headers.get("content-type", ""), response.content
        )
        if not found and (not isinstance(parsed, dict) or parsed.get("errors")):
            found = [f"errors: {response.content[:300]!r}"]
        problems.extend(f"reading back as {user.email}: {p}" for p in found)
    return problems


async def health_problem(world: World) -> str | None:
    """What /healthz says is wrong, if anything. Its database ping is bounded by 2 s, which a loaded
    machine's turns can pass (seen once in CI, on PostgreSQL: the next ask answered 200): a 503 for
    the database alone is asked again, up to three times in all, before it counts. A stalled loop,
    or a database that stays away, still fails the call."""
    assert world.app.http is not None
    for _ in range(3):
        health = await world.app.http.get("/healthz")
        if health.status_code == 200:
            return None
        if health.json().get("stalled") or health.json().get("database") != "unavailable":
            break
    return f"/healthz {health.status_code} {health.text[:200]}"


async def run_call(world: World, call: Call) -> None:
    await world.ensure_pristine()
    before = world.current
    if call.telegram_fault is not None:
        world.telegram.fail_next(*call.telegram_fault)
    prepared = prepare(world, call)
    if prepared.method == "WS":
        outcome = await send_websocket(world, call, prepared)
    else:
        outcome = await send_http(world, call, prepared)
    if call.telegram_fault is not None:
        world.clear_telegram_faults()
    after = world.current = await snapshot(world.app, world.telegram)
    problems = list(outcome.problems)
    if (outcome.refused or call.field.operation == "query") and after != before:
        kind = "a refused call" if outcome.refused else "a query"
        problems.append(f"{kind} changed " + "; ".join(differences(before, after)))
    if not outcome.refused and call.field.operation == "mutation":
        problems.extend(await read_back_problems(world))
    if (unhealthy := await health_problem(world)) is not None:
        problems.append(unhealthy)
    event(f"{call.field.name}: {outcome.label}")
    report_or_fail(f"{call!r}\n{outcome.summary}", problems)


@pytest.mark.slow
@pytest.mark.parametrize("root", ROOT_FIELDS, ids=lambda root: root.name)
@generated_settings(examples=30)
@given(data=st.data())
async def test_hostile_calls_never_fail_on_our_side_and_refused_calls_change_nothing(
    world: World, root: RootField, data: st.DataObject
):
    # Half the calls come from anyone, anyhow; the other half from the signed-in pro user with
    # real ids, so that the hostile values get past authentication and lookups to the services.
    signed_in = data.draw(st.booleans(), label="signed in")
    await run_call(world, data.draw(calls(root, signed_in=signed_in), label="call"))
