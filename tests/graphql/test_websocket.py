"""graphql-transport-ws on /graphql: the token travels in connection_init, as browsers must send it."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"


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
    assert {p["slug"] for p in public["data"]["plugins"]} == {"analytics", "welcome"}
    private = await run_over_websocket(app, {}, "{ me { email } }")
    assert private["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bad_token_closes_the_connection_as_forbidden(app):
    async with connect(ws_url(app), subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer pb_wrong"}}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_is_not_offered(app):
    async with connect(ws_url(app), subprotocols=["graphql-ws"]) as ws:
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
