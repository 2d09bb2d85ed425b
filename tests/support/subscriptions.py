"""A graphql-transport-ws client for tests: one subscription over a real websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.support.eventually import DEADLINE_SECONDS

PROTOCOL = Subprotocol("graphql-transport-ws")


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


class Subscription:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def message(self, timeout: float = DEADLINE_SECONDS) -> dict[str, Any]:
        """The next protocol message (pings answered on the way)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def next(self, timeout: float = DEADLINE_SECONDS) -> dict[str, Any]:
        """The data of the next event; fails on an error or the end of the subscription."""
        message = await self.message(timeout)
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message["payload"]
        return message["payload"]["data"]

    async def until(self, predicate: Any, timeout: float = DEADLINE_SECONDS) -> tuple[dict[str, Any], int]:
        """Events until one satisfies `predicate`; returns it and how many events it took."""
        loop = asyncio.get_running_loop()
        end, count = loop.time() + timeout, 0
        while True:
            data = await self.next(max(0.1, end - loop.time()))
            count += 1
            if predicate(data):
                return data, count


@contextlib.asynccontextmanager
async def subscribe(
    base_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> AsyncIterator[Subscription]:
    async with connect(ws_url(base_url), subprotocols=[PROTOCOL]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = variables
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": body}))
        yield Subscription(ws)


class Socket:
    """One acknowledged graphql-transport-ws connection carrying many operations at once."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.firsts: dict[str, dict[str, Any]] = {}  # each operation's first message

    async def subscribe(self, operation_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.ws.send(json.dumps({"type": "subscribe", "id": operation_id, "payload": payload}))

    async def complete(self, operation_id: str) -> None:
        await self.ws.send(json.dumps({"type": "complete", "id": operation_id}))

    async def message(self, timeout: float = DEADLINE_SECONDS) -> dict[str, Any]:
        """The next protocol message (pings answered on the way); each operation's first is kept."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if "id" in message:
                self.firsts.setdefault(message["id"], message)
            return message

    async def first_messages(self, ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
        """The first message of each of `ids` (`next` or `error`), in whatever order they come."""
        while not all(i in self.firsts for i in ids):
            await self.message(timeout)
        return {i: self.firsts[i] for i in ids}


@contextlib.asynccontextmanager
async def open_socket(base_url: str, token: str | None = None, **options: Any) -> AsyncIterator[Socket]:
    """A connection past connection_ack; `options` go to websockets' connect (e.g. max_queue)."""
    async with connect(ws_url(base_url), subprotocols=[PROTOCOL], **options) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        yield Socket(ws)
