"""Live subscriptions are bounded per user, across sockets, and each one's cost is bounded: one user
cannot take the server's memory or its database pool, and everyone else's updates still arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.eventually import eventually
from tests.support.live import LiveApp
from tests.support.memory import MIB, PeakMemory, heap_as_served
from tests.support.outage import HealthWatch
from tests.support.queries import counting_queries
from tests.support.redis_server import shared_redis_url
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.server import LiveServer
from tests.support.subscriptions import open_socket, subscribe
from tests.support.telegram_updates import message_update

TOO_MANY = "TOO_MANY_SUBSCRIPTIONS"

# What the attack asked for: the longest window, and every field of a summary.
HEAVY = """subscription($chatId: ID) { analyticsUpdated(chatId: $chatId, days: 3650) {
  totalMessages messagesReceived messagesSent uniqueUsers messagesToday messagesThisWeek
  daily(days: 31) { date messages users joins leaves } activeUsers { day week month } hourly
  period { start end totalMessages uniqueUsers joins leaves messagesToday messagesThisWeek }
  previousPeriod { start end totalMessages uniqueUsers messagesToday messagesThisWeek }
  chats(limit: 100) { chatId title messages users totalMessages } } }"""
LIVE = "subscription { analyticsUpdated { totalMessages } }"


def total(data: dict) -> int:
    return data["analyticsUpdated"]["totalMessages"]


def code(message: dict) -> str | None:
    return message["payload"][0]["extensions"]["code"] if message["type"] == "error" else None


async def analytics_owner(app, telegram, email: str, plan: str = "free"):
    owner = await app.create_user(email, plan)
    bot = await connect_bot(app, owner, telegram, username=email.split("@")[0] + "_bot")
    await install(app, owner, "analytics")
    return owner, bot


async def test_one_users_five_sockets_of_a_hundred_subscriptions_get_the_bound_and_no_more(app, telegram):
    limit = app.settings.max_subscriptions_per_user
    abuser, abuser_bot = await analytics_owner(app, telegram, "abuser@example.com")
    other, other_bot = await analytics_owner(app, telegram, "other@example.com")
    for n in range(1, 41):  # figures in the chats the subscriptions ask for
        await deliver(app, abuser_bot, message_update(n, chat_id=-(n % 20 + 1), sender_id=n))
    await wait_until_processed(app)
    memory = PeakMemory()
    async with subscribe(app.url, LIVE, token=other.token) as others:
        assert total(await others.next()) == 0
        memory.start()
        with heap_as_served():  # the served process's pauses are watched, not the test process's (see there)
            async with HealthWatch(app.http, interval=0.05) as health, contextlib.AsyncExitStack() as stack:
                sockets = [await stack.enter_async_context(open_socket(app.url, abuser.token)) for _ in range(5)]
                ids = [str(n) for n in range(100)]
                for s, socket in enumerate(sockets):
                    for n in ids:
                        await socket.subscribe(n, HEAVY, {"chatId": str(-(s * 100 + int(n) + 1))})
                firsts = [m for socket in sockets for m in (await socket.first_messages(ids)).values()]
                served = [m for m in firsts if m["type"] == "next"]
                assert len(served) == limit
                assert all(not m["payload"].get("errors") for m in served)
                assert [code(m) for m in firsts if m["type"] != "next"] == [TOO_MANY] * (500 - limit)
                # Changes in the chats the abuser watches, and one for another user, whose update arrives.
                for n in range(41, 81):
                    await deliver(app, abuser_bot, message_update(n, chat_id=-(n % 20 + 1), sender_id=n))
                await deliver(app, other_bot, message_update(1, chat_id=-7))
                await others.until(lambda d: total(d) == 1, timeout=60)
        growth = memory.growth()
    assert health.answers and health.statuses() == {200}, health.failures()
    assert growth < 150 * MIB, f"RSS grew by {growth / MIB:.0f} MiB"


@contextlib.asynccontextmanager
async def unpinged(app: LiveApp) -> AsyncIterator[LiveServer]:
    """The app (already started) served again without websocket keepalive pings: a client that
    reads nothing answers no ping either, and on a busy machine the keepalive (40 s) could cut it
    off first, for another reason than the one under test."""
    server = LiveServer(app.app, lifespan="off", ws_ping_interval=None)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_client_that_stops_reading_is_cut_off_and_holds_no_connection_meanwhile(app, telegram, caplog):
    caplog.set_level(logging.INFO, logger="app.graphql")
    owner, bot = await analytics_owner(app, telegram, "slow@example.com")
    other, other_bot = await analytics_owner(app, telegram, "reads@example.com")
    big = HEAVY.replace("daily(days: 31)", "daily(days: 3650)")  # about 200 KB a summary
    async with unpinged(app) as server:  # the app served again, without keepalive pings
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        async with (
            open_socket(server.url, owner.token, sock=sock, max_queue=1, compression=None, max_size=None) as slow,
            subscribe(app.url, LIVE, token=other.token) as others,
        ):
            assert total(await others.next()) == 0
            await slow.subscribe("1", big, {"chatId": "-1"})
            assert (await slow.first_messages(["1"]))["1"]["type"] == "next"
            # It reads nothing more: each change replaces the summary that waits for it, until more than
            # the bound has been replaced while it took nothing.
            update_id = 0
            while app.platform.subscriptions.held(owner.id) > 0:
                update_id += 1
                assert update_id <= 500, "a client that reads nothing was never cut off"
                await deliver(app, bot, message_update(update_id, chat_id=-1))
                await wait_until_processed(app)
                # Meanwhile the database answers everyone else: nothing waits for the client holding one.
                # (Not /healthz: its ping has a 2 s bound, which a loaded machine's turns can exceed.)
                figures = await app.graphql("{ analytics { totalMessages } }", user=owner)
                assert figures["analytics"]["totalMessages"] == update_id
            with pytest.raises(ConnectionClosed):  # what was buffered, then the end of the connection
                while True:
                    await slow.message(timeout=60)
            await deliver(app, other_bot, message_update(1, chat_id=-1))  # another client's updates still come
            await others.until(lambda d: total(d) == 1)
    limit = app.settings.websocket_send_buffer_bytes
    cut_off = [r.args[0] for r in caplog.records if r.msg.startswith("a websocket client was cut off")]
    assert cut_off == [f"Too slow: took nothing while more than {limit} bytes of updates were replaced"]


# --- slots: taken by each subscription, given back however it ends ------------------------------

CREATE_TOKEN = "mutation($name: String!) { createApiToken(name: $name) { token apiToken { id } } }"
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) }"


def held(app, user) -> int:
    return app.platform.subscriptions.held(user.id)


async def test_past_the_bound_a_subscription_is_refused_and_the_connection_goes_on(make_app, telegram):
    app = await make_app(max_subscriptions_per_user=2)
    owner, _ = await analytics_owner(app, telegram, "two@example.com")
    async with open_socket(app.url, owner.token) as first, open_socket(app.url, owner.token) as second:
        await first.subscribe("a", LIVE)
        await second.subscribe("a", LIVE, {})
        assert (await first.first_messages(["a"]))["a"]["type"] == "next"
        assert (await second.first_messages(["a"]))["a"]["type"] == "next"
        await second.subscribe("b", LIVE)
        refused = (await second.first_messages(["b"]))["b"]
        assert refused["type"] == "error" and code(refused) == TOO_MANY
        assert "2 at once" in refused["payload"][0]["message"]
        await second.subscribe("c", "{ me { email } }")  # queries still run on that connection
        assert (await second.first_messages(["c"]))["c"]["payload"]["data"] == {"me": {"email": "two@example.com"}}
        await second.subscribe("b", LIVE)  # the refused id is free again, and still refused
        second.firsts.pop("b")
        assert code((await second.first_messages(["b"]))["b"]) == TOO_MANY
        assert held(app, owner) == 2


async def test_completing_a_subscription_frees_its_slot(make_app, telegram):
    app = await make_app(max_subscriptions_per_user=1)
    owner, _ = await analytics_owner(app, telegram, "one@example.com")
    async with open_socket(app.url, owner.token) as ws:
        await ws.subscribe("a", LIVE)
        assert (await ws.first_messages(["a"]))["a"]["type"] == "next"
        await ws.complete("a")
        await eventually(lambda: held(app, owner) == 0, "the completed subscription's slot given back")
        await ws.subscribe("b", LIVE)
        assert (await ws.first_messages(["b"]))["b"]["type"] == "next"


async def test_closing_a_socket_frees_the_slots_of_its_subscriptions(make_app, telegram):
    app = await make_app(max_subscriptions_per_user=3)
    owner, _ = await analytics_owner(app, telegram, "three@example.com")
    async with open_socket(app.url, owner.token) as ws:
        for n in ("a", "b", "c"):
            await ws.subscribe(n, LIVE, {"n": n})
        assert {m["type"] for m in (await ws.first_messages(["a", "b", "c"])).values()} == {"next"}
        assert held(app, owner) == 3
    await eventually(lambda: held(app, owner) == 0, "the closed socket's slots given back")
    async with open_socket(app.url, owner.token) as ws:
        for n in ("a", "b", "c"):
            await ws.subscribe(n, LIVE)
        assert {m["type"] for m in (await ws.first_messages(["a", "b", "c"])).values()} == {"next"}


async def test_subscriptions_that_end_in_an_error_hold_no_slot(make_app, telegram):
    app = await make_app(max_subscriptions_per_user=1)
    stranger = await app.create_user("stranger@example.com")  # no Channel Analytics
    async with open_socket(app.url, stranger.token) as ws:
        for n in ("a", "b", "c"):
            await ws.subscribe(n, LIVE)
            ended = await ws.first_messages([n])
            errors = ended[n]["payload"] if ended[n]["type"] == "error" else ended[n]["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "NOT_INSTALLED"
        for n, days in (("d", 3651), ("e", 0)):  # a window beyond the longest retention, as the query refuses it
            await ws.subscribe(
                n, "subscription($d: Int!) { analyticsUpdated(days: $d) { totalMessages } }", {"d": days}
            )
            ended = (await ws.first_messages([n]))[n]
            errors = ended["payload"] if ended["type"] == "error" else ended["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await eventually(lambda: held(app, stranger) == 0, "the failed subscriptions' slots given back")


async def test_a_subscription_ended_by_its_revoked_token_frees_its_slot(make_app, telegram):
    app = await make_app(max_subscriptions_per_user=1)
    owner, _ = await analytics_owner(app, telegram, "revoked@example.com")
    created = (await app.graphql(CREATE_TOKEN, {"name": "old phone"}, user=owner))["createApiToken"]
    async with open_socket(app.url, created["token"]) as ws:
        await ws.subscribe("a", LIVE)
        assert (await ws.first_messages(["a"]))["a"]["type"] == "next"
        await app.graphql(REVOKE_TOKEN, {"id": created["apiToken"]["id"]}, user=owner)
        await ws.ws.wait_closed()  # the revocation closes the socket (4403), and so ends the subscription
        assert ws.ws.close_code == 4403
        await eventually(lambda: held(app, owner) == 0, "the ended subscription's slot given back")
    async with open_socket(app.url, owner.token) as ws:
        await ws.subscribe("b", LIVE)
        assert (await ws.first_messages(["b"]))["b"]["type"] == "next"


async def test_the_bound_holds_across_server_processes_sharing_redis(make_app, telegram):
    redis_url = await shared_redis_url()
    first = await make_app(broadcast_url=redis_url, max_subscriptions_per_user=2)
    second = await make_app(broadcast_url=redis_url, max_subscriptions_per_user=2, inbox_concurrency=0)
    owner, _ = await analytics_owner(first, telegram, "across@example.com")
    async with open_socket(first.url, owner.token) as one, open_socket(second.url, owner.token) as two:
        await one.subscribe("a", LIVE)
        await two.subscribe("a", LIVE)
        assert (await one.first_messages(["a"]))["a"]["type"] == "next"
        assert (await two.first_messages(["a"]))["a"]["type"] == "next"
        await two.subscribe("b", LIVE)
        assert code((await two.first_messages(["b"]))["b"]) == TOO_MANY
        await one.complete("a")
        await eventually(lambda: held(first, owner) == 0, "the completed subscription's slot given back")
        for attempt in range(100):  # Redis drops the member just after: until then, refused
            await two.subscribe(f"c{attempt}", LIVE)
            if (await two.first_messages([f"c{attempt}"]))[f"c{attempt}"]["type"] == "next":
                break
        else:
            raise AssertionError("the slot given back on one server never became free on the other")


# --- what one subscription costs ------------------------------------------------------------------


async def test_subscriptions_reads_wait_for_their_own_gate_and_webhooks_and_queries_do_not(make_app, telegram):
    app = await make_app(subscription_read_concurrency=1)
    owner, bot = await analytics_owner(app, telegram, "gate@example.com")
    gate = app.platform.summary_reads
    await gate.acquire()  # the one read a summary may run is taken
    try:
        async with open_socket(app.url, owner.token) as ws:
            await ws.subscribe("a", LIVE)
            first = asyncio.ensure_future(ws.first_messages(["a"]))
            assert (await deliver(app, bot, message_update(1, chat_id=-1))).status_code == 200
            await wait_until_processed(app)
            assert (await app.graphql("{ analytics { totalMessages } }", user=owner))["analytics"]["totalMessages"] == 1
            assert not first.done()  # the subscription's summary still waits for the gate
            gate.release()
            assert total((await first)["a"]["payload"]["data"]) == 1
    finally:
        if gate.locked():
            gate.release()


async def reads_until_shown(app, bot, ws, update_id: int, chat_id: int, operation_id: str, shown: int) -> int:
    """The SELECTs on analytics tables from a webhook in `chat_id` until its subscription shows it."""
    with counting_queries() as statements:
        await deliver(app, bot, message_update(update_id, chat_id=chat_id))
        while True:
            message = await ws.message()
            if (
                message.get("id") == operation_id
                and message["type"] == "next"
                and total(message["payload"]["data"]) == shown
            ):
                break
    return sum(1 for s in statements if "SELECT" in s.upper() and "analytics_" in s)


async def test_a_change_in_one_chat_recomputes_the_summaries_of_that_chat_only(app, telegram):
    owner, bot = await analytics_owner(app, telegram, "chats@example.com")
    for n, chat_id in enumerate((-1, -2, -3), start=1):  # each chat's and sender's first message: more writes
        await deliver(app, bot, message_update(n, chat_id=chat_id))
    await wait_until_processed(app)
    one_chat = "subscription($c: ID) { analyticsUpdated(chatId: $c) { totalMessages } }"
    async with open_socket(app.url, owner.token) as ws:
        await ws.subscribe("1", one_chat, {"c": "-1"})
        await ws.first_messages(["1"])
        alone = await reads_until_shown(app, bot, ws, 4, -1, "1", shown=2)
        await ws.subscribe("2", one_chat, {"c": "-2"})
        await ws.subscribe("3", one_chat, {"c": "-3"})
        await ws.first_messages(["2", "3"])
        beside_others = await reads_until_shown(app, bot, ws, 5, -1, "1", shown=3)
    assert alone > 0
    assert beside_others == alone
