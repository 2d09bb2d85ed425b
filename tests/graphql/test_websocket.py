"""graphql-transport-ws on /graphql: the token travels in connection_init, as browsers must send it."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.rows import all_rows

PROTOCOL = Subprotocol("graphql-transport-ws")


def ws_url(app) -> str:
    return app.url.replace("http://", "ws://") + "/graphql"


async def run_over_websocket(app, payload: dict, query: str) -> dict:
    async with connect(ws_url(app), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        message = json.loads(await ws.recv())
        assert message["type"] == "next", message
        return message["payload"]


async def test_a_token_in_connection_init_authenticates_the_connection(app, user):
    result = await run_over_websocket(app, {"Authorization": f"Bearer {user.token}"}, "{ me { email } }")
    assert result == {"data": {"me": {"email": "ada@example.com"}}}


async def test_without_a_token_only_public_fields_answer(app):
    public = await run_over_websocket(app, {}, "{ plugins { slug } }")
    assert {p["slug"] for p in public["data"]["plugins"]} == {"analytics", "forward", "welcome"}
    private = await run_over_websocket(app, {}, "{ me { email } }")
    assert private["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bad_token_closes_the_connection_as_forbidden(app):
    async with connect(ws_url(app), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer pb_wrong"}}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_is_not_offered(app):
    async with connect(ws_url(app), subprotocols=[Subprotocol("graphql-ws")]) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406


async def test_each_operation_on_a_connection_sees_fresh_install_state(app, user):
    async with connect(ws_url(app), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {user.token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        async def run(operation_id: str, query: str, variables: dict | None = None) -> dict:
            payload = {"query": query, "variables": variables or {}}
            await ws.send(json.dumps({"type": "subscribe", "id": operation_id, "payload": payload}))
            message = json.loads(await ws.recv())
            assert message["type"] == "next", message
            assert json.loads(await ws.recv()) == {"type": "complete", "id": operation_id}
            return message["payload"]["data"]

        catalog = '{ plugin(slug: "analytics") { id installed } }'
        before = (await run("1", catalog))["plugin"]
        assert before["installed"] is False
        await run("2", "mutation($id: ID!) { installPlugin(pluginId: $id) { id } }", {"id": before["id"]})
        assert (await run("3", catalog))["plugin"]["installed"] is True


# --- the same limits as over HTTP --------------------------------------------------------------

INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id config } }"
UPDATE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"


class Session:
    """One acknowledged graphql-transport-ws connection; messages are sent as written."""

    def __init__(self, ws) -> None:
        self.ws = ws

    async def send(self, message: dict | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def subscribe(self, operation_id: str, query: str, variables: dict | None = None) -> None:
        await self.send(
            {"type": "subscribe", "id": operation_id, "payload": {"query": query, "variables": variables or {}}}
        )

    async def answer(self) -> dict:
        """The first message for an operation: `next` (then `complete`) or `error`."""
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if message["type"] == "next":
            assert json.loads(await asyncio.wait_for(self.ws.recv(), 30))["type"] == "complete"
        return message

    async def closed(self) -> tuple[int, str]:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(self.ws.recv(), 30)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason


@contextlib.asynccontextmanager
async def session(app, user=None):
    payload = {} if user is None else {"Authorization": f"Bearer {user.token}"}
    async with connect(ws_url(app), subprotocols=[PROTOCOL], max_size=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        yield Session(ws)


async def plugin_id(app, slug: str) -> str:
    return (await app.graphql("query($s: String!) { plugin(slug: $s) { id } }", {"s": slug}))["plugin"]["id"]


async def test_a_message_over_the_body_limit_closes_the_socket_with_1009_and_changes_nothing(app, pro_user):
    welcome = await plugin_id(app, "welcome")
    before = await all_rows(app)
    async with session(app, pro_user) as ws:
        config = {"message": "x" * 5_500_000}  # the 5.5 MB config once accepted here
        await ws.subscribe("1", INSTALL, {"id": welcome, "config": config})
        code, reason = await ws.closed()
    assert (code, reason) == (1009, "Message larger than 1000000 bytes")
    assert await all_rows(app) == before


async def test_the_message_limit_is_max_body_bytes(make_app):
    live = await make_app(max_body_bytes=10_000)
    async with session(live) as ws:
        await ws.subscribe("1", "query($pad: String!) { plugin(slug: $pad) { id } }", {"pad": "x" * 9_000})
        assert (await ws.answer())["type"] == "next"
        await ws.subscribe("2", "query($pad: String!) { plugin(slug: $pad) { id } }", {"pad": "x" * 10_000})
        assert (await ws.closed())[0] == 1009


async def test_a_query_over_max_query_bytes_is_an_error_for_its_operation_only(make_app):
    live = await make_app(max_query_bytes=1_000)
    async with session(live) as ws:
        await ws.subscribe("1", "{ plugins { slug } }" + " " * 1_000)
        refused = await ws.answer()
        assert refused["type"] == "error" and refused["id"] == "1"
        assert refused["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        assert "larger than 1000 bytes" in refused["payload"][0]["message"]
        await ws.subscribe("2", "{ plugins { slug } }")
        assert (await ws.answer())["payload"]["data"]["plugins"]


async def test_variables_over_max_variables_bytes_are_an_error_for_their_operation_only(make_app):
    live = await make_app(max_variables_bytes=1_000)
    async with session(live) as ws:
        await ws.subscribe("1", "{ plugins { slug } }", {"pad": "x" * 1_000})
        refused = await ws.answer()
        assert refused["type"] == "error" and refused["id"] == "1"
        assert refused["payload"][0]["extensions"]["code"] == "VARIABLES_TOO_LARGE"
        assert "larger than 1000 bytes" in refused["payload"][0]["message"]
        await ws.subscribe("2", "{ plugins { slug } }", {"pad": "x" * 900})
        assert (await ws.answer())["payload"]["data"]["plugins"]


async def test_the_token_depth_and_alias_limits_hold_over_the_websocket(make_app):
    live = await make_app(max_query_depth=1)
    too_many_tokens = "{ " + " ".join(f"a{n}: plugins {{ slug }}" for n in range(3_000)) + " }"
    too_deep = "{ myPlugins { plugin { slug } } }"
    too_many_aliases = "{ " + " ".join(f"a{n}: plugins {{ slug }}" for n in range(31)) + " }"
    async with session(live) as ws:
        for operation_id, query, words in [
            ("tokens", too_many_tokens, "tokens"),
            ("depth", too_deep, "depth"),
            ("aliases", too_many_aliases, "aliases"),
        ]:
            await ws.subscribe(operation_id, query)
            refused = await ws.answer()
            assert refused["type"] == "error", refused
            assert words in refused["payload"][0]["message"]


async def test_the_reproduction_is_refused_over_the_websocket_by_the_array_limit(make_app):
    app = await make_app(max_variables_bytes=1_000_000)  # the array limit holds whatever the variables limit
    user = await app.create_user("ada@example.com", "free")
    welcome = await plugin_id(app, "welcome")
    await app.graphql(INSTALL, {"id": welcome}, user=user)
    before = await all_rows(app)
    async with session(app, user) as ws:
        await ws.subscribe("1", UPDATE, {"id": welcome, "config": {"chats": ["x", *range(20_000)]}})
        answer = await ws.answer()
    [error] = answer["payload"]["errors"]
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": [{"path": "/chats", "message": "has 20001 items; at most 1000 are allowed"}],
    }
    assert await all_rows(app) == before


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", '"a\\u0000"', '"\\ud800"'])
async def test_nan_infinity_nul_and_surrogates_are_bad_user_input_over_the_websocket(app, user, bad):
    analytics = await plugin_id(app, "analytics")
    before = await all_rows(app)
    async with session(app, user) as ws:
        payload = f'{{"query": {json.dumps(INSTALL)}, "variables": {{"id": "{analytics}", "config": {{"retention": {bad}}}}}}}'
        await ws.send(f'{{"type": "subscribe", "id": "1", "payload": {payload}}}')
        answer = await ws.answer()
    [error] = answer["payload"]["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == "/retention"
    assert await all_rows(app) == before


@pytest.mark.parametrize(
    "message",
    [
        {"type": "subscribe", "id": "1", "payload": "x"},
        {"type": "subscribe", "id": "1", "payload": {"query": 5}},
        {"type": "subscribe", "id": "1"},
        "[" * 100_000 + "]" * 100_000,
        "{not json",
    ],
    ids=["payload-not-object", "query-not-string", "no-payload", "deep-json", "not-json"],
)
async def test_a_malformed_message_closes_with_4400_not_a_crash(app, message):
    async with session(app) as ws:
        await ws.send(message)
        assert (await ws.closed())[0] == 4400


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"query": "query A { plugins { slug } }", "operationName": "Other"}, "OPERATION_RESOLUTION_FAILURE"),
        ({"query": "query A { plugins { slug } } query B { plugins { id } }"}, "OPERATION_RESOLUTION_FAILURE"),
        ({"query": ""}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ plugins { "}, "GRAPHQL_PARSE_FAILED"),
    ],
    ids=["unknown-operation-name", "several-operations", "empty", "unparsable"],
)
async def test_request_errors_over_the_websocket_are_the_clients_not_ours(app, payload, code, caplog):
    async with session(app) as ws:
        await ws.send({"type": "subscribe", "id": "1", "payload": payload})
        refused = await ws.answer()
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == code
    assert "unexpected error" not in caplog.text
