"""Live fan-out: webhook -> processing -> `analyticsUpdated` pushes to many websocket subscribers,
against a bare Starlette websocket broadcast (`bench/fanout_reference.py`) measured in the same run.

    .venv/bin/python -m bench.fanout [--database-url URL] [--users 100] [--per-user 10] [--rounds 5]
        [--mode burst|single] [--query widget|small] [--separate-worker | --two-servers]

Ours: one `python -m app serve` process (processing on; or ingest-only plus a `worker` process and
Redis pub/sub with --separate-worker). `--users` users, each with its own API token, an active
Telegram gateway and the analytics plugin, and `--per-user` graphql-transport-ws subscribers each
of `analyticsUpdated` (the dashboard widget's query by default). With --two-servers, webhooks go to
one `serve` process (processing on) and the subscribers are on a second one (ingest-only), with Redis
pub/sub between them; memory and CPU are then the subscribers' server's.

A round: `burst` POSTs one message update per user at once, `single` one update for one user (the
next each round) while every subscriber stays connected. A first round (one update per user at
once, whatever the mode) is timed apart: it pays each gateway's first event since start and each
chat's first message, which the steady state never does. A sample is, for one webhook, the time
from its 200 to the event of the LAST of its user's subscribers that shows the new total. The
reference does the same: one `POST /trigger/{user}` per user, answered 200 before it sends the
same payload text to that user's sockets. Rounds of both alternate, so both see the same machine.
Also printed: the server's RSS growth per subscriber and its CPU time per round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.ratios import report
from bench.webhook_ingest import free_port, serve

PROTOCOL = "graphql-transport-ws"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# The dashboard widget's subscription (frontend/src/analytics/summary.js), and a small one.
QUERIES = {
    "widget": """subscription AnalyticsWidget($days: Int!, $chatId: ID) {
  analyticsUpdated(days: $days, chatId: $chatId) {
    totalMessages messagesToday messagesThisWeek uniqueUsers
    activeUsers { day week month }
    period { totalMessages uniqueUsers joins leaves }
    previousPeriod { totalMessages uniqueUsers messagesToday messagesThisWeek }
    daily(days: $days) { date messages users }
    hourly
    chats(limit: 5) { chatId title type messages users }
  }
}""",
    "small": "subscription($days: Int!) { analyticsUpdated(days: $days) { totalMessages messagesToday uniqueUsers } }",
}


@dataclass
class Account:
    index: int
    token: str
    gateway_id: str
    secret: str


@dataclass
class Listener:
    """One websocket client: the arrival time of each round's event."""

    group: int
    ws: ClientConnection | None = None
    arrivals: dict[int, float] = field(default_factory=dict)
    last_text: str = ""
    count: int = 0


class Connections:
    """Keep-alive HTTP/1.1 connections, one per group, opened before the rounds: a trigger costs
    the client one write and one read (httpx costs about a millisecond of CPU per request, which
    would skew every 200 of a burst)."""

    IDLE_SECONDS = 4.0  # uvicorn closes a keep-alive connection idle for 5 s

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._used: dict[int, float] = {}

    async def ready(self, groups: list[int]) -> None:
        """Opens the connections of `groups` anew where the server may close them meanwhile."""

        async def open_one(group: int) -> None:
            stale = time.monotonic() - self._used.get(group, 0.0) > self.IDLE_SECONDS
            if group in self._streams and not stale and not self._streams[group][0].at_eof():
                return
            if group in self._streams:
                self._streams[group][1].close()
            self._streams[group] = await asyncio.open_connection("127.0.0.1", self.port)
            self._used[group] = time.monotonic()

        await asyncio.gather(*(open_one(g) for g in groups))

    async def post(self, group: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        head = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        for attempt in range(2):
            reader, writer = self._streams[group]
            writer.write(request)
            status_line = await reader.readline()
            if status_line:
                break
            if attempt:  # closed twice in a row: not the keep-alive timeout
                raise SystemExit(f"port {self.port} closed the connection")
            self._streams[group] = await asyncio.open_connection("127.0.0.1", self.port)
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        self._used[group] = time.monotonic()
        return int(status_line.split()[1])

    async def close(self) -> None:
        for _, writer in self._streams.values():
            writer.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def prepare(database_url: str, users: int) -> list[Account]:
    from app.accounts.models import Plan
    from app.accounts.service import AccountService
    from app.db import Database
    from app.gateways.models import Gateway, GatewayType, new_gateway_columns
    from app.ids import new_secret
    from app.plugins.models import Plugin, UserPlugin

    db = Database(database_url)
    await db.open()
    accounts = []
    run = time.time_ns()
    with db.bound():
        plugin = await Plugin.get(slug="analytics")
        for n in range(users):
            user, token = await AccountService().create_user(f"fanout-{run}-{n}@example.com", Plan.PRO)
            secret = new_secret()
            gateway = await Gateway.create(
                owner_id=user.id,
                type=GatewayType.TELEGRAM_BOT,
                name=f"fanout {n}",
                **new_gateway_columns(f"{n}:fanout", secret),
            )
            await UserPlugin.create(user_id=user.id, plugin=plugin, config={"trackUsers": True, "retention": 30})
            accounts.append(Account(n, token, gateway.id, secret))
    await db.close()
    return accounts


class Side:
    """One server under test: connects its listeners, triggers a round, says when it has arrived."""

    name: str
    pid: int
    listeners: list[Listener]

    async def connect_all(self, groups: int, per_group: int) -> None:
        self.listeners = [Listener(g) for g in range(groups) for _ in range(per_group)]
        gate = asyncio.Semaphore(50)

        async def one(listener: Listener) -> None:
            async with gate:
                await self.connect(listener)

        await asyncio.gather(*(one(listener) for listener in self.listeners))
        for listener in self.listeners:
            asyncio.create_task(self.listen(listener))

    async def connect(self, listener: Listener) -> None:
        raise NotImplementedError

    async def listen(self, listener: Listener) -> None:
        raise NotImplementedError

    async def trigger(self, group: int) -> None:
        """Makes one change for `group`'s listeners; returns at its 200."""
        raise NotImplementedError

    http: Connections

    def expected(self, group: int) -> int:
        """The arrival key of `group`'s event for its latest change."""
        raise NotImplementedError

    async def close(self) -> None:
        await asyncio.gather(*(l.ws.close() for l in self.listeners if l.ws is not None), return_exceptions=True)


class Plugboard(Side):
    name = "plugboard"

    def __init__(self, base: str, pid: int, accounts: list[Account], query: str, ws_base: str | None = None) -> None:
        self.base, self.pid, self.accounts, self.query = base, pid, accounts, query
        self.ws_base = ws_base or base  # where the subscribers connect
        self.update_ids = itertools.count(1)
        self.totals = [0] * len(accounts)  # each user's messages so far: its next event's totalMessages
        self.http = Connections(int(base.rsplit(":", 1)[1]))

    async def connect(self, listener: Listener) -> None:
        url = self.ws_base.replace("http://", "ws://") + "/graphql"
        ws = await connect(url, subprotocols=[Subprotocol(PROTOCOL)], max_size=None)
        token = self.accounts[listener.group].token
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": self.query, "variables": {"days": 7}}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
        text = await ws.recv()
        first = json.loads(text)
        assert first["type"] == "next" and not first["payload"].get("errors"), first
        listener.ws, listener.last_text = ws, str(text)

    async def listen(self, listener: Listener) -> None:
        assert listener.ws is not None
        async for text in listener.ws:
            now = time.perf_counter()
            message = json.loads(text)
            if message["type"] == "ping":
                await listener.ws.send('{"type":"pong"}')
                continue
            if message["type"] != "next" or message["payload"].get("errors"):
                raise SystemExit(f"subscription failed: {message}")
            total = message["payload"]["data"]["analyticsUpdated"]["totalMessages"]
            listener.arrivals.setdefault(total, now)
            listener.last_text = str(text)

    async def trigger(self, group: int) -> None:
        account = self.accounts[group]
        self.totals[group] += 1
        update_id = next(self.update_ids)
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": -1000 - group, "type": "supergroup", "title": "Fan-out"},
                "from": {"id": 5000 + update_id % 50, "is_bot": False, "first_name": "Ada"},
                "text": "hello",
            },
        }
        path = f"/webhooks/telegram/{account.gateway_id}"
        status = await self.http.post(group, path, json.dumps(update).encode(), {SECRET_HEADER: account.secret})
        if status != 200:
            raise SystemExit(f"webhook answered {status}")

    def expected(self, group: int) -> int:
        return self.totals[group]

    def payload(self, group: int) -> str:
        """The text last pushed to this user's subscribers: the reference sends it byte for byte."""
        return next(l.last_text for l in self.listeners if l.group == group and l.last_text)


class Reference(Side):
    name = "reference"

    def __init__(self, base: str, pid: int, groups: int, payloads: Callable[[int], str]) -> None:
        self.base, self.pid, self.payloads = base, pid, payloads
        self.sent = [0] * groups
        self.http = Connections(int(base.rsplit(":", 1)[1]))

    async def connect(self, listener: Listener) -> None:
        listener.ws = await connect(self.base.replace("http://", "ws://") + f"/ws/{listener.group}", max_size=None)

    async def listen(self, listener: Listener) -> None:
        assert listener.ws is not None
        async for text in listener.ws:
            now = time.perf_counter()
            json.loads(text)  # the same client-side work as for ours
            listener.count += 1
            listener.arrivals[listener.count] = now

    async def trigger(self, group: int) -> None:
        self.sent[group] += 1
        status = await self.http.post(group, f"/trigger/{group}", self.payloads(group).encode())
        if status != 200:
            raise SystemExit(f"reference answered {status}")

    def expected(self, group: int) -> int:
        return self.sent[group]  # the n-th message a listener gets answers the n-th trigger


async def run_round(side: Side, groups: list[int], verbose: bool = False, timeout: float = 300) -> list[float]:
    """Triggers `groups` at once; one sample per group: its 200 to its last listener's event."""
    await side.http.ready(groups)
    await asyncio.sleep(0.05)
    acknowledged: dict[int, float] = {}
    started = time.perf_counter()

    async def fire(group: int) -> None:
        await side.trigger(group)
        acknowledged[group] = time.perf_counter()

    await asyncio.gather(*(fire(g) for g in groups))
    members = [l for l in side.listeners if l.group in acknowledged]
    target = side.expected
    end = time.perf_counter() + timeout
    while not all(target(l.group) in l.arrivals for l in members):
        if time.perf_counter() > end:
            missing = sum(target(l.group) not in l.arrivals for l in members)
            raise SystemExit(f"{side.name}: {missing} subscribers never got their event")
        await asyncio.sleep(0.005)
    last: dict[int, float] = {}
    for l in members:
        last[l.group] = max(last.get(l.group, 0.0), l.arrivals[target(l.group)])
    if verbose:
        acks, events = sorted(acknowledged.values()), sorted(l.arrivals[target(l.group)] for l in members)
        print(
            f"  {side.name:<10} from the first request: 200s {(acks[0] - started) * 1000:6.0f}..{(acks[-1] - started) * 1000:6.0f} ms, "
            f"events {(events[0] - started) * 1000:6.0f} / {(events[len(events) // 2] - started) * 1000:6.0f} / "
            f"{(events[-1] - started) * 1000:6.0f} ms (first / median / last)"
        )
    return [last[g] - acknowledged[g] for g in groups]


def report_side(name: str, samples: list[float], cpu: float, rounds: int) -> tuple[float, float]:
    p50, p99 = statistics.median(samples) * 1000, percentile(samples, 99) * 1000
    print(
        f"{name:<11} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   max {max(samples) * 1000:8.1f} ms   "
        f"server CPU {cpu / rounds * 1000:7.1f} ms/round   ({len(samples)} samples)"
    )
    return p50, p99


async def measure(args: argparse.Namespace, ours: Plugboard, ref: Reference) -> None:
    users = len(ours.accounts)
    # Warm both servers (imports, caches) with one subscriber, before the memory baseline.
    for side in (ours, ref):
        warm = Listener(0)
        await side.connect(warm)
        assert warm.ws is not None
        await warm.ws.close()
    await asyncio.sleep(1)
    memory: dict[str, float] = {}
    for side in (ours, ref):
        before = rss_kib(side.pid)
        started = time.perf_counter()
        await side.connect_all(users, args.per_user)
        connected = time.perf_counter() - started
        await asyncio.sleep(1)
        memory[side.name] = (rss_kib(side.pid) - before) / len(side.listeners)
        print(
            f"{side.name:<11} {len(side.listeners)} subscribers in {connected:.1f} s, "
            f"RSS {before / 1024:.0f} -> {rss_kib(side.pid) / 1024:.0f} MiB"
        )

    # The client's own garbage collection stays out of the timed rounds: a full collection of this
    # process (2,000 sockets) pauses it for about 100 ms, which lands in whichever side's round it
    # falls in. It collects between rounds instead, while nothing is timed.
    gc.collect()
    gc.disable()
    # The first round after start is apart: each gateway's first event in a process loads its
    # routes and secrets, and each chat's first message writes what a chat's later ones never do.
    # It is timed and printed, not in the rounds' ratios (those are the steady state).
    first: dict[str, list[float]] = {}
    for side in (ours, ref):
        first[side.name] = await run_round(side, list(range(users)), args.verbose)
        gc.collect()
        await asyncio.sleep(0.6)

    profiler = None
    if args.profile:  # py-spy on our server during the rounds (pip install py-spy)
        profiler = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-p",
                str(ours.pid),
                "-f",
                "raw",
                "-o",
                args.profile,
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1)
    samples: dict[str, list[float]] = {"plugboard": [], "reference": []}
    cpu: dict[str, float] = {"plugboard": 0.0, "reference": 0.0}
    for round_no in range(1, args.rounds + 1):
        groups = list(range(users)) if args.mode == "burst" else [(round_no - 1) % users]
        for side in (ours, ref):
            cpu_before = cpu_seconds(side.pid)
            samples[side.name] += await run_round(side, groups, args.verbose)
            cpu[side.name] += cpu_seconds(side.pid) - cpu_before
            gc.collect()
            await asyncio.sleep(0.6)  # past the subscription's push interval
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait()
    print()
    print(
        f"mode: {args.mode} ({'one webhook per user at once' if args.mode == 'burst' else 'one webhook per round'}), "
        f"query: {args.query}, {args.rounds} rounds, {users} users x {args.per_user} subscribers"
    )
    ours_p50, ours_p99 = report_side("plugboard", samples["plugboard"], cpu["plugboard"], args.rounds)
    ref_p50, ref_p99 = report_side("reference", samples["reference"], cpu["reference"], args.rounds)
    print(
        f"ratio       p50 {ours_p50 / ref_p50:8.2f}      p99 {ours_p99 / ref_p99:8.2f}      (aim: p99 <= 3)   "
        f"server CPU {cpu['plugboard'] / max(cpu['reference'], 1e-9):.1f}x"
    )
    print(
        f"memory      plugboard {memory['plugboard']:.1f} KiB/subscriber, reference {memory['reference']:.1f} KiB/subscriber"
    )
    first_ours, first_ref = first["plugboard"], first["reference"]
    print(
        f"first round (each gateway's first event since start, each chat's first message): plugboard p50 "
        f"{statistics.median(first_ours) * 1000:.1f} ms, max {max(first_ours) * 1000:.1f} ms; reference p50 "
        f"{statistics.median(first_ref) * 1000:.1f} ms, max {max(first_ref) * 1000:.1f} ms"
    )
    report("fan-out p99 / bare websocket broadcast", ours_p99 / ref_p99, "≤ 3")
    report("fan-out p50 / bare websocket broadcast", ours_p50 / ref_p50, "≤ 5")
    await asyncio.gather(ours.close(), ref.close(), ours.http.close(), ref.http.close())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mode", choices=("burst", "single"), default="burst")
    parser.add_argument("--query", choices=tuple(QUERIES), default="widget")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--separate-worker", action="store_true", help="ingest-only serve + a worker, Redis pub/sub")
    shape.add_argument(
        "--two-servers",
        action="store_true",
        help="webhooks to one serve, subscribers on another (ingest-only), Redis pub/sub",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--verbose", action="store_true", help="print each round's timeline")
    parser.add_argument(
        "--profile", metavar="FILE", help="record our server with py-spy during the rounds (raw format)"
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2,000 sockets here, 1,000 in each server
    workdir = tempfile.mkdtemp(prefix="plugboard-fanout-")
    database_url = args.database_url or f"sqlite://{workdir}/fanout.sqlite3"
    env = {
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "false",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        # A webhook deployment, as its bots' updates come by webhook here: with no public URL the
        # server would also long-poll Telegram for each of the 100 bots (their leases renewed every
        # few seconds, their failures backed off), and that work would land in the rounds.
        "PUBLIC_URL": "https://plugboard.example",
        "TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: refused at once
    }
    if args.separate_worker or args.two_servers:
        env |= {"BROADCAST_URL": args.redis_url}
    python = sys.executable
    port, ref_port, ws_port = free_port(), free_port(), free_port()
    server_env = env | ({"INBOX_CONCURRENCY": "0"} if args.separate_worker else {})
    processes = [serve([python, "-m", "app", "serve", "--port", str(port)], server_env, "/healthz", port)]
    try:
        if args.two_servers:
            processes.insert(
                0,
                serve(
                    [python, "-m", "app", "serve", "--port", str(ws_port)],
                    env | {"INBOX_CONCURRENCY": "0"},
                    "/healthz",
                    ws_port,
                ),
            )
        else:
            ws_port = port
        if args.separate_worker:
            processes.append(
                subprocess.Popen(
                    [python, "-m", "app", "worker"],
                    env={**os.environ, **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        processes.append(
            serve(
                [
                    python,
                    "-m",
                    "uvicorn",
                    "bench.fanout_reference:app",
                    "--port",
                    str(ref_port),
                    "--log-level",
                    "warning",
                ],
                {},
                "/",
                ref_port,
            )
        )
        accounts = asyncio.run(prepare(database_url, args.users))
        asyncio.run(run(args, accounts, processes[0].pid, processes[-1].pid, port, ref_port, ws_port))
    finally:
        for process in processes:
            process.terminate()
            process.wait()


async def run(
    args: argparse.Namespace, accounts: list[Account], pid: int, ref_pid: int, port: int, ref_port: int, ws_port: int
) -> None:
    ours = Plugboard(f"http://127.0.0.1:{port}", pid, accounts, QUERIES[args.query], f"http://127.0.0.1:{ws_port}")
    ref = Reference(f"http://127.0.0.1:{ref_port}", ref_pid, len(accounts), ours.payload)
    await measure(args, ours, ref)


if __name__ == "__main__":
    main()
