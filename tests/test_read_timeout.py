"""REQUEST_READ_TIMEOUT_SECONDS: a client that trickles its request in is answered 408 and cut
off, over real sockets; requests that arrive in time are not affected, however long they run."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.serve_process import ServeProcess
from tests.support.server import LiveServer

BOUND = 0.5  # seconds: small, so that the tests wait little; nothing here depends on its being short
# What arrives in time must arrive within the bound however loaded the machine is: a client that
# sends at once may still take a while to be heard. Tests that show what is left alone use this one.
ROOMY_BOUND = 5.0
GENEROUS = 30  # how long a test waits for the server's answer before it calls the server hung


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.1) -> None:
    """Sends `data` a byte at a time, as a slowloris client does, until it is sent or the server
    closes the connection."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)  # the client's pace, not a wait for the server


async def answer_to_trickled(port: int, head: bytes, body: bytes = b"", keep_sending: bool = False) -> bytes:
    """What the server sends back, and then closes, while `head` and `body` arrive a byte at a time
    (the head at once when the body is the slow part). The client stops sending once answered,
    unless it `keep_sending`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if body:
            writer.write(head)
            sending = asyncio.create_task(trickle(writer, body))
        else:
            sending = asyncio.create_task(trickle(writer, head))
        chunks = []
        with contextlib.suppress(ConnectionResetError):  # closed with bytes of ours unread, after its answer
            while chunk := await asyncio.wait_for(reader.read(65_536), GENEROUS):  # b"" once the server closes
                chunks.append(chunk)
                if not keep_sending:
                    sending.cancel()
        return b"".join(chunks)
    finally:
        sending.cancel()
        writer.close()


def post_head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


# --- the body: app.read_timeout.ReadTimeout, in an app served by another server -----------------


async def test_a_trickling_body_is_answered_408_and_closed(make_app):
    live = await make_app(request_read_timeout_seconds=BOUND)
    body = json.dumps({"query": "{ plugins { slug } }", "pad": "x" * 400}).encode()
    answer = await answer_to_trickled(live.server.port, post_head("/graphql", len(body)), body)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


async def test_requests_that_arrive_in_time_are_unaffected(make_app):
    live = await make_app(request_read_timeout_seconds=ROOMY_BOUND)
    async with httpx.AsyncClient(base_url=live.url) as http:  # one kept-alive connection
        for _ in range(3):
            response = await http.post("/graphql", json={"query": "{ plugins { slug } }"})
            assert response.status_code == 200 and len(response.json()["data"]["plugins"]) == 3
        assert (await http.get("/healthz")).status_code == 200


async def test_a_handler_may_run_longer_than_the_bound_once_the_body_is_in():
    from app.read_timeout import ReadTimeout

    async def slow(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await asyncio.sleep(ROOMY_BOUND * 2)  # the handler's own slow work
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"got %d bytes" % len(body)})

    async with LiveServer(ReadTimeout(slow, ROOMY_BOUND), lifespan="off") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=GENEROUS) as http:
            response = await http.post("/", content=b"x" * 100_000)
    assert response.status_code == 200 and response.text == "got 100000 bytes"


# --- headers and body: app.read_timeout.TimedHttpToolsProtocol, as `serve` runs it --------------


def serve_env(database_url: str, telegram, bound: float) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "TELEGRAM_API_URL": telegram.url,
        "PUBLIC_URL": "https://plugboard.example",
        "SCHEDULER_ENABLED": "false",
        "REQUEST_READ_TIMEOUT_SECONDS": str(bound),
    }


@pytest.fixture
async def served(database_url, backend, telegram):
    if backend != "sqlite":
        pytest.skip("reading requests does not depend on the database")
    async with ServeProcess(serve_env(database_url, telegram, BOUND)) as server:
        yield server


@pytest.fixture
async def served_roomy(database_url, backend, telegram):
    if backend != "sqlite":
        pytest.skip("reading requests does not depend on the database")
    async with ServeProcess(serve_env(database_url, telegram, ROOMY_BOUND)) as server:
        yield server


async def test_serve_cuts_off_trickling_headers_an_idle_connection_and_a_trickling_body(served):
    headers = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n"
    assert (await answer_to_trickled(served.port, headers)).startswith(b"HTTP/1.1 408 ")

    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)  # connects, sends nothing
    assert (await asyncio.wait_for(reader.read(), GENEROUS)).startswith(b"HTTP/1.1 408 ")
    writer.close()

    body = b'{"query": "{ plugins { slug } }"}'
    assert (await answer_to_trickled(served.port, post_head("/graphql", len(body)), body)).startswith(b"HTTP/1.1 408 ")

    # Answered before its body was read (no such gateway), the client trickling on: cut off too.
    webhook = post_head("/webhooks/telegram/" + "0" * 32, 10_000)
    assert (await answer_to_trickled(served.port, webhook, b"{" * 10_000, keep_sending=True)).startswith(
        b"HTTP/1.1 401 "
    )


@pytest.mark.slow
async def test_serve_leaves_kept_alive_requests_and_websockets_alone(served_roomy):
    served = served_roomy
    async with httpx.AsyncClient(base_url=served.url) as http:
        for _ in range(3):
            assert (await http.post("/graphql", json={"query": "{ plugins { slug } }"})).status_code == 200
    url = served.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await asyncio.sleep(ROOMY_BOUND * 2)  # outlives the bound: a websocket is not a request being read
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), GENEROUS))["type"] == "pong"
