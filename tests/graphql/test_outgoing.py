"""What a websocket has to send waits in a bounded queue (app/graphql/outgoing.py), where a live
summary still waiting is replaced by its subscription's newer one. A client is cut off for falling
behind, never for one burst larger than WEBSOCKET_SEND_BUFFER_BYTES while it reads.

The clients here connect to the app served again on a socket whose send buffer is 4 KiB (and read
through a 4 KiB receive buffer): what they do not read waits in the queue after about 100 KB, not
after the megabytes that loopback's autotuned buffers would take first. A second, prompt socket
with the same token shares each subscription's execution (app/graphql/websocket.py): once it has a
summary, the same summary has been queued for the client under test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from app.graphql.outgoing import Outgoing
from tests.graphql.test_subscription_limits import CREATE_TOKEN, REVOKE_TOKEN, analytics_owner, held
from tests.support.eventually import eventually
from tests.support.runtime import deliver, wait_until_processed
from tests.support.server import LiveServer
from tests.support.subscriptions import Socket, open_socket
from tests.support.telegram_updates import message_update

SMALL_BUFFER = 4096

# A summary with `days` days of figures: about 57 bytes a day.
SUMMARY = """subscription($days: Int!) { analyticsUpdated(days: $days) {
  totalMessages daily(days: $days) { date messages users joins leaves } } }"""
QUERY = "query($days: Int!) { analytics(days: $days) { daily(days: $days) { date messages users joins leaves } } }"
ME = "{ me { email } }"


@contextlib.asynccontextmanager
async def narrow_server(app: Any) -> AsyncIterator[LiveServer]:
    """The app (already started) served again, from a socket with a small send buffer, without
    websocket keepalive pings: a client that reads nothing answers no ping either, and on a busy
    machine the keepalive (40 s) could cut it off first, for another reason than the one under test."""
    server = LiveServer(app.app, lifespan="off", send_buffer_bytes=SMALL_BUFFER, ws_ping_interval=None)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def reader(server: LiveServer, token: str) -> AsyncIterator[Socket]:
    """A connection with a small receive buffer; it reads only when the test does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.connect(("127.0.0.1", server.port))
    async with open_socket(server.url, token, sock=sock, max_queue=1, compression=None, max_size=None) as ws:
        yield ws


def cut_off_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split("): ", 1)[1] for r in caplog.records if r.msg.startswith("a websocket client was cut off")
    ]


def total(message: dict[str, Any]) -> int:
    assert message["type"] == "next" and not message["payload"].get("errors"), message
    return message["payload"]["data"]["analyticsUpdated"]["totalMessages"]


async def published(witness: Socket, ids: list[str], shown: int) -> int:
    """Reads the prompt socket until each of `ids` shows `shown` messages; the bytes of those summaries."""
    sizes: dict[str, int] = {}
    while len(sizes) < len(ids):
        message = await witness.message()
        if message["type"] == "next" and total(message) == shown:
            sizes[message["id"]] = len(json.dumps(message))
    return sum(sizes.values())


async def change(app: Any, bot: Any, update_id: int) -> None:
    await deliver(app, bot, message_update(update_id, chat_id=-1))
    await wait_until_processed(app)


async def still_served(ws: Socket, email: str) -> None:
    """The connection answers a query (read to its `complete`, so nothing is left unread)."""
    await ws.subscribe("me", ME)
    while (message := await ws.message())["id"] != "me":
        pass
    assert message["payload"]["data"] == {"me": {"email": email}}
    assert await ws.message() == {"id": "me", "type": "complete"}


async def test_a_client_gets_the_latest_of_twenty_summaries_that_together_pass_the_bound(make_app, telegram):
    bound = 50_000
    app = await make_app(websocket_send_buffer_bytes=bound, max_subscriptions_per_user=40)
    owner, bot = await analytics_owner(app, telegram, "burst@example.com")
    ids = [str(n) for n in range(20)]
    days = {n: 240 + int(n) for n in ids}  # twenty executions of their own, about 14 KB a summary each
    async with narrow_server(app) as server, open_socket(app.url, owner.token) as witness:
        for n in ids:
            await witness.subscribe(n, SUMMARY, {"days": days[n]})
        await witness.first_messages(ids)
        async with reader(server, owner.token) as client:
            for n in ids:
                await client.subscribe(n, SUMMARY, {"days": days[n]})
            assert {total(m) for m in (await client.first_messages(ids)).values()} == {0}
            # One change: twenty new summaries at once, queued while the client has not read them yet.
            await change(app, bot, 1)
            burst = await published(witness, ids, shown=1)
            assert burst > 4 * bound  # beyond the ~100 KB the buffers take, more than the bound waits
            latest: dict[str, int] = {}
            while len(latest) < len(ids) or set(latest.values()) != {1}:
                message = await client.message()
                latest[message["id"]] = total(message)
            await still_served(client, "burst@example.com")


async def test_a_client_that_stalls_then_reads_gets_the_newest_summary_not_each_one_it_missed(make_app, telegram):
    app = await make_app(websocket_send_buffer_bytes=4_000_000)
    owner, bot = await analytics_owner(app, telegram, "stall@example.com")
    async with narrow_server(app) as server, open_socket(app.url, owner.token) as witness:
        await witness.subscribe("1", SUMMARY, {"days": 3650})  # about 210 KB a summary
        await witness.first_messages(["1"])
        async with reader(server, owner.token) as client:
            await client.subscribe("1", SUMMARY, {"days": 3650})
            assert total((await client.first_messages(["1"]))["1"]) == 0
            changes = 8  # about 1.7 MB of summaries: the first few fill the buffers, the rest wait
            for n in range(1, changes + 1):  # each change a summary of its own, that the client does not read
                await change(app, bot, n)
                await published(witness, ["1"], shown=n)
            received = []
            while not received or received[-1] != changes:
                received.append(total(await client.message()))
            assert received == sorted(received)
            assert len(received) < changes, received
            await still_served(client, "stall@example.com")


async def test_a_socket_closed_while_its_summary_waits_sends_what_waited_then_closes(make_app, telegram):
    """Its token revoked: the close (4403) goes out after the summaries already queued, the waiting
    one being the newest (the older ones it replaced are never sent)."""
    app = await make_app(websocket_send_buffer_bytes=4_000_000)
    owner, bot = await analytics_owner(app, telegram, "ends@example.com")
    created = (await app.graphql(CREATE_TOKEN, {"name": "laptop"}, user=owner))["createApiToken"]
    async with narrow_server(app) as server, open_socket(app.url, created["token"]) as witness:
        await witness.subscribe("1", SUMMARY, {"days": 3650})
        await witness.first_messages(["1"])
        async with reader(server, created["token"]) as client:
            await client.subscribe("1", SUMMARY, {"days": 3650})
            await client.first_messages(["1"])
            changes = 6
            for n in range(1, changes + 1):
                await change(app, bot, n)
                await published(witness, ["1"], shown=n)
            await app.graphql(REVOKE_TOKEN, {"id": created["apiToken"]["id"]}, user=owner)
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await witness.message()
            received = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    received.append(await client.message())
    assert (witness.ws.close_code, client.ws.close_code) == (4403, 4403)
    assert all(m["type"] == "next" for m in received), received
    assert [total(m) for m in received] == sorted(total(m) for m in received)
    assert len(received) < changes


async def test_summaries_past_the_hard_bound_cut_the_client_off(make_app, telegram, caplog):
    caplog.set_level(logging.INFO, logger="app.graphql")
    bound = 50_000
    app = await make_app(websocket_send_buffer_bytes=bound, max_subscriptions_per_user=40)
    owner, _ = await analytics_owner(app, telegram, "hard@example.com")
    async with narrow_server(app) as server, reader(server, owner.token) as client:
        await client.subscribe("0", SUMMARY, {"days": 700})
        await client.first_messages(["0"])
        for n in range(1, 20):  # nineteen summaries of about 40 KB, unread: more than eight times the bound
            await client.subscribe(str(n), SUMMARY, {"days": 700 + n})
        await eventually(lambda: held(app, owner) == 0, "the client cut off, its subscriptions ended")
        with pytest.raises(ConnectionClosed):
            while True:
                await client.message()
    assert cut_off_reasons(caplog) == [f"Too slow: more than {8 * bound} bytes waiting to be sent"]


def summaries_made(app: Any) -> int:
    """The shared executions running that have made a summary (each then waits to be sent)."""
    return sum(1 for state in app.platform.live.shared._states.values() if state.version > 0)


async def test_a_revoked_tokens_socket_that_reads_nothing_is_cut_off_and_its_operations_end(make_app, telegram, caplog):
    """The 4403 close waits behind what the client does not read: its operations end anyway, at once."""
    caplog.set_level(logging.INFO, logger="app.graphql")
    app = await make_app(websocket_send_buffer_bytes=4_000_000, max_subscriptions_per_user=40)
    owner, _ = await analytics_owner(app, telegram, "stuck@example.com")
    created = (await app.graphql(CREATE_TOKEN, {"name": "stuck"}, user=owner))["createApiToken"]
    async with narrow_server(app) as server, reader(server, created["token"]) as client:
        await client.subscribe("0", SUMMARY, {"days": 3650})
        await client.first_messages(["0"])
        for n in range(1, 20):  # nineteen summaries of about 200 KB, unread: within the bound, never all sent
            await client.subscribe(str(n), SUMMARY, {"days": 3650 - n})
        await eventually(lambda: summaries_made(app) == 20, "each subscription's first summary made")
        await app.graphql(REVOKE_TOKEN, {"id": created["apiToken"]["id"]}, user=owner)
        await eventually(lambda: held(app, owner) == 0, "the client cut off, its subscriptions ended")
        with pytest.raises(ConnectionClosed):
            while True:
                await client.message()
    assert cut_off_reasons(caplog) == ["Forbidden: its API token stopped working"]


async def test_results_that_nothing_replaces_cut_the_client_off_past_the_bound(make_app, telegram, caplog):
    caplog.set_level(logging.INFO, logger="app.graphql")
    bound = 200_000
    app = await make_app(websocket_send_buffer_bytes=bound)
    owner, _ = await analytics_owner(app, telegram, "results@example.com")
    async with narrow_server(app) as server, reader(server, owner.token) as client:
        await client.subscribe("live", SUMMARY, {"days": 1})
        await client.first_messages(["live"])
        for n in range(10):  # ten query results of about 210 KB, unread
            await client.subscribe(str(n), QUERY, {"days": 3650})
        await eventually(lambda: held(app, owner) == 0, "the client cut off, its subscription ended")
        with pytest.raises(ConnectionClosed):
            while True:
                await client.message()
        assert cut_off_reasons(caplog) == [f"Too slow: more than {bound} bytes waiting to be sent"]
        async with open_socket(app.url, owner.token) as other:
            await still_served(other, "results@example.com")


class Wire:
    """The server's side of a connection: a send waits while the transport is full (`room` clear)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.senders: list[asyncio.Task[Any] | None] = []
        self.room = asyncio.Event()
        self.room.set()
        self.closed: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        await self.room.wait()
        self.sent.append(text)
        self.senders.append(asyncio.current_task())

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_message_put_while_nothing_waits_is_handed_over_at_once_in_the_putters_task():
    wire = Wire()
    outgoing = Outgoing(wire.send_text, wire.close, 1_000)
    outgoing.put_latest("live", "summary")
    outgoing.put("result")
    assert wire.sent == ["summary", "result"]
    assert wire.senders == [asyncio.current_task()] * 2  # no writer task woken for them
    assert (outgoing.taken, outgoing.waiting_bytes) == (2, 0)


async def test_a_message_handed_over_at_once_that_waits_for_room_goes_before_all_put_after_it():
    wire = Wire()
    outgoing = Outgoing(wire.send_text, wire.close, 1_000)
    wire.room.clear()  # the transport is full
    outgoing.put_latest("live", "first")  # begun at once; it waits for room
    outgoing.put("result")
    outgoing.put_latest("live", "second")  # "first" was handed over: this one queues anew, not in its place
    outgoing.put_latest("live", "third")  # replaces "second", still waiting
    assert wire.sent == []
    wire.room.set()
    async with asyncio.timeout(5):
        await outgoing.close(1000, "done")
    assert wire.sent == ["first", "result", "third"]
    assert wire.closed == (1000, "done")


async def test_a_waiting_writer_finishes_a_message_begun_at_once_that_waits_for_room():
    wire = Wire()
    outgoing = Outgoing(wire.send_text, wire.close, 1_000)
    wire.room.clear()
    outgoing.put_latest("live", "first")  # begun at once, waits: the writer task is made for it
    wire.room.set()
    async with asyncio.timeout(5):
        while outgoing.taken < 1:
            await asyncio.sleep(0)  # the writer finishes it, then waits for more
    wire.room.clear()
    outgoing.put_latest("live", "second")  # begun at once again, waits; the writer is waiting already
    outgoing.put("after")
    wire.room.set()
    async with asyncio.timeout(5):
        await outgoing.close(1000, "done")
    assert wire.sent == ["first", "second", "after"]
