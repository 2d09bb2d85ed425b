"""The known expensive inputs, one at a time: each is answered without a 5xx or an
INTERNAL_SERVER_ERROR. How long each blocks the event loop is bench/event_loop.py's measure
(it sends these same inputs); no test bounds time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.hostile_world import World
from tests.support.oracle import graphql_error_problems, graphql_http_problems, strict_json
from tests.support.runtime import SECRET_HEADER

UPDATE_CONFIG = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"
INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id } }"
MIXED_CHATS = {"chats": ["x", *range(20_000)]}  # jsonschema's uniqueItems compares every pair


@dataclass
class Sent:
    status: int  # the HTTP status, or the websocket's close code (1000 when it ended normally)
    problems: list[str]


@pytest.fixture
async def world(make_app, telegram) -> World:
    return await World.create(await make_app(), telegram)


def graphql_body(query: str, variables: dict | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


async def post_graphql(world: World, body: bytes, token: str | None = None) -> Sent:
    assert world.app.http is not None
    headers = {"Content-Type": "application/json", "Accept": "application/graphql-response+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await world.app.http.post("/graphql", content=body, headers=headers)
    problems, _ = graphql_http_problems(
        response.status_code, response.headers.get("content-type", ""), response.content
    )
    return Sent(response.status_code, problems)


async def over_websocket(world: World, message: str, token: str) -> Sent:
    url = world.app.url.replace("http://", "ws://") + "/graphql"
    problems: list[str] = []
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None, compression=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert strict_json(await ws.recv())["type"] == "connection_ack"
        try:
            await ws.send(message)
            reply = strict_json(await ws.recv())
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            if code in (1006, 1011):
                problems.append(f"the websocket closed with {code}")
            return Sent(code, problems)
        payload = reply.get("payload")
        problems.extend(graphql_error_problems(payload.get("errors") if isinstance(payload, dict) else payload))
        return Sent(1000, problems)


async def post_webhook(world: World, body: bytes) -> Sent:
    assert world.app.http is not None
    bot = world.bots["mine"]
    response = await world.app.http.post(bot.webhook_path, content=body, headers={SECRET_HEADER: bot.secret})
    problems = [f"status {response.status_code}"] if response.status_code >= 500 else []
    return Sent(response.status_code, problems)


def expensive_inputs(world: World) -> dict[str, Callable[[], Awaitable[Sent]]]:
    """Each input, encoded now, so that the client's own encoding is not measured."""
    mine, theirs = world.mine.token, world.theirs.token  # welcome: installed by theirs, not by mine
    welcome, analytics = world.refs["plugin:welcome"], world.refs["plugin:analytics"]
    mixed_update = graphql_body(UPDATE_CONFIG, {"id": welcome, "config": MIXED_CHATS})
    mixed_install = graphql_body(INSTALL, {"id": welcome, "config": MIXED_CHATS})
    deep_config = graphql_body(UPDATE_CONFIG, {"id": analytics, "config": {"a": 1}}).replace(
        b'{"a": 1}', b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    )
    wide_config = graphql_body(UPDATE_CONFIG, {"id": analytics, "config": {f"k{i}": i for i in range(60_000)}})
    near_limit_query = graphql_body('{ plugins(category: "' + "x" * 99_000 + '") { id } }')
    huge_query = graphql_body("{ me { id } }" + " #" + "x" * 990_000)
    many_aliases = graphql_body(
        "{ " + " ".join(f"a{i}: myPlugins {{ plugin {{ configSchema }} }}" for i in range(30)) + " }"
    )
    too_many_aliases = graphql_body("{ " + " ".join(f"a{i}: plugins {{ id }}" for i in range(5_000)) + " }")
    many_variables = json.dumps({"query": "{ me { id } }", "variables": {f"v{i}": i for i in range(60_000)}}).encode()
    huge_ws_config = json.dumps(
        {
            "type": "subscribe",
            "id": "1",
            "payload": {
                "query": UPDATE_CONFIG,
                "variables": {"id": welcome, "config": {"chats": ["x", *range(700_000)]}},
            },
        }
    )
    mixed_ws_config = json.dumps(
        {
            "type": "subscribe",
            "id": "1",
            "payload": {"query": UPDATE_CONFIG, "variables": {"id": welcome, "config": MIXED_CHATS}},
        }
    )
    deep_webhook = b'{"update_id": 1, "message": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"
    big_webhook = (
        b'{"update_id": 77, "message": {"message_id": 1, "date": 1, "chat": {"id": -1, "type": "group"}, "text": "'
        + b"x" * 250_000
        + b'"}}'
    )
    return {
        "updatePluginConfig with 20,000 mixed chats": lambda: post_graphql(world, mixed_update, theirs),
        "installPlugin with 20,000 mixed chats": lambda: post_graphql(world, mixed_install, mine),
        "a config nested 200,000 deep": lambda: post_graphql(world, deep_config, mine),
        "a config of 60,000 keys": lambda: post_graphql(world, wide_config, mine),
        "a 99 KB query": lambda: post_graphql(world, near_limit_query, mine),
        "a 990 KB query": lambda: post_graphql(world, huge_query),
        "30 aliases of every plugin's schema": lambda: post_graphql(world, many_aliases, mine),
        "5,000 aliases": lambda: post_graphql(world, too_many_aliases),
        "60,000 variables": lambda: post_graphql(world, many_variables),
        "a 5.5 MB config over the websocket": lambda: over_websocket(world, huge_ws_config, mine),
        "20,000 mixed chats over the websocket": lambda: over_websocket(world, mixed_ws_config, theirs),
        "a webhook body nested 2,000 deep": lambda: post_webhook(world, deep_webhook),
        "a 250 KB webhook body": lambda: post_webhook(world, big_webhook),
    }


async def test_each_expensive_input_is_answered_without_a_fault(world: World):
    faults: list[str] = []
    for label, send in expensive_inputs(world).items():
        sent = await send()
        faults.extend(f"{label}: {problem}" for problem in sent.problems)
    assert faults == []
