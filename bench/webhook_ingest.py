"""Webhook ingest throughput against a bare Starlette endpoint, measured in the same run.

    .venv/bin/python -m bench.webhook_ingest [--database-url URL] [--seconds 5] [--rounds 3]
        [--connections 32] [--ingest-only] [--drain] [--separate-worker]

Needs `wrk` (Debian: apt-get install wrk). Runs the reference and Plugboard in turn, `--rounds`
times, and prints each round's requests/s, the CPU each server spent per request, and the median
ratio; every acknowledged update is checked to be in the database afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from app.accounts.service import AccountService
from app.db import Database
from app.gateways.models import EventStatus, Gateway, GatewayEvent, GatewayType, new_gateway_columns
from app.ids import new_secret
from app.plugins.models import Plugin, UserPlugin
from bench.pg import DEFAULT_SERVER, scratch_database_for
from bench.ratios import report

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


@dataclass
class Run:
    rate: float  # requests/s
    requests: int
    non2xx: int
    errors: int
    cpu_us: float  # the server's CPU time (all its threads) per request, in microseconds


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, pid: int, path: str, secret: str, seconds: int, connections: int, offset: int) -> Run:
    env = {**os.environ, "WEBHOOK_PATH": path, "WEBHOOK_SECRET": secret, "UPDATE_ID_OFFSET": str(offset)}
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "post_update.lua"), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = cpu_seconds(pid) - before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    counts = re.search(r"RESULT requests=(\d+) non2xx=(\d+) errors=(\d+)", out)
    requests, non2xx, errors = (int(n) for n in counts.groups()) if counts else (0, 0, 0)
    return Run(rate, requests, non2xx, errors, used / max(requests, 1) * 1e6)


def serve(args: list[str], env: dict[str, str], ready_path: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}{ready_path}", process)
    return process


async def prepare(database_url: str) -> tuple[str, str]:
    """A user with analytics installed and a gateway whose secret we know."""
    db = Database(database_url)
    await db.open(create=True)
    await db.migrate()
    with db.bound():
        user, _ = await AccountService().create_user(f"bench-{time.time_ns()}@example.com")
        secret = new_secret()
        gateway = await Gateway.create(
            owner_id=user.id,
            type=GatewayType.TELEGRAM_BOT,
            name="bench",
            **new_gateway_columns("0:bench", secret),
        )
        plugin = await Plugin.get_or_none(slug="analytics")
        if plugin is not None:
            await UserPlugin.create(user_id=user.id, plugin=plugin, config={"trackUsers": True, "retention": 30})
    await db.close()
    return gateway.id, secret


async def count_done(database_url: str) -> int:
    db = Database(database_url)
    await db.open()
    with db.bound():
        count = await GatewayEvent.filter(status=EventStatus.DONE).count()
    await db.close()
    return count


def measure_drain(database_url: str, env: dict[str, str], seconds: int) -> float:
    """Events per second one server process takes from the backlog, with analytics installed."""
    port = free_port()
    server = serve(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        {**env, "INBOX_CONCURRENCY": "16"},
        "/healthz",
        port,
    )
    try:
        time.sleep(2)  # let the dispatcher reach its pace
        before = asyncio.run(count_done(database_url))
        time.sleep(seconds)
        after = asyncio.run(count_done(database_url))
    finally:
        server.terminate()
        server.wait()
    return (after - before) / seconds


async def count_events(database_url: str, gateway_id: str) -> int:
    db = Database(database_url)
    await db.open()
    with db.bound():
        count = await GatewayEvent.filter(gateway_id=gateway_id).count()
    await db.close()
    return count


async def commit_latency_ms(database_url: str, commits: int = 30) -> float:
    """The median time of one durable commit of a one-row INSERT on the database now (on SQLite in a
    file beside the database, with the URL's `synchronous`). Every group commit waits that long at
    least; the reference never does."""
    times = []
    if database_url.startswith("sqlite"):
        path, _, query = database_url.removeprefix("sqlite://").partition("?")
        synchronous = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("synchronous", "FULL")
        connection = sqlite3.connect(Path(path).with_name("commit-probe.sqlite3"), isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={synchronous}")
            connection.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
            for n in range(commits):
                started = time.perf_counter()
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("INSERT INTO probe VALUES (?)", (n,))
                connection.execute("COMMIT")
                times.append(time.perf_counter() - started)
        finally:
            connection.close()
    else:
        server = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        try:
            await server.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (n int)")
            for n in range(commits):
                started = time.perf_counter()
                await server.execute("INSERT INTO bench_commit_probe VALUES ($1)", n)
                times.append(time.perf_counter() - started)
            await server.execute("DROP TABLE bench_commit_probe")
        finally:
            await server.close()
    return statistics.median(times) * 1000


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env={**os.environ, **env, "INBOX_CONCURRENCY": "16"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3)
    return worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="reference and Plugboard runs, interleaved")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ingest-only", action="store_true", help="no processing in the server (INBOX_CONCURRENCY=0)")
    parser.add_argument("--drain", action="store_true", help="then measure how fast one process works off the backlog")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="an ingest-only server plus one `python -m app worker` process working during its runs",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on a scratch PostgreSQL database at BENCH_POSTGRES_URL's server, dropped afterwards "
        "(a database kept from an earlier run holds secrets sealed with that run's SECRET_KEY)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")
    if not args.postgres:
        measure(args)
        return
    with scratch_database_for(DEFAULT_SERVER) as url:
        args.database_url = url
        measure(args)


def measure(args: argparse.Namespace) -> None:
    workdir = tempfile.mkdtemp(prefix="plugboard-bench-")
    database_url = args.database_url or f"sqlite://{workdir}/bench.sqlite3"
    # Start the server once so the catalog (and analytics) exists, then make the bench user.
    python = sys.executable
    port, ref_port = free_port(), free_port()
    env = {
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "false",
        "ACCESS_LOG": "false",  # the reference logs no requests either
        # A webhook deployment: with no public URL the server would long-poll Telegram for the bench's
        # bot, and the poller's first attempt (aiogram's import, 1-2 s of CPU) could land in a round.
        "PUBLIC_URL": "https://plugboard.example",
        "INBOX_CONCURRENCY": "0"
        if args.ingest_only or args.separate_worker
        else os.environ.get("INBOX_CONCURRENCY", "16"),
    }
    runs: list[tuple[Run, Run]] = []
    commit_ms: list[float] = []
    done_during = 0
    # A scratch PostgreSQL database is made by the server (its first run), as the README says.
    command = [python, "-m", "app", "serve", "--port", str(port), "--create-database"]
    server = serve(command, env, "/healthz", port)
    try:
        gateway_id, secret = asyncio.run(prepare(database_url))
        path = f"/webhooks/telegram/{gateway_id}"
        reference = serve(
            [python, "-m", "uvicorn", "bench.reference_app:app", "--port", str(ref_port), "--log-level", "warning"],
            {},
            "/",
            ref_port,
        )
        try:
            # Interleaved, so that both sides see the same load from whatever else the machine runs.
            for number in range(args.rounds):
                commit_ms.append(asyncio.run(commit_latency_ms(database_url)))
                ref = run_wrk(
                    f"http://127.0.0.1:{ref_port}", reference.pid, path, secret, args.seconds, args.connections, 0
                )
                worker = start_worker(env) if args.separate_worker else None
                done_before = asyncio.run(count_done(database_url))
                try:
                    ours = run_wrk(
                        f"http://127.0.0.1:{port}",
                        server.pid,
                        path,
                        secret,
                        args.seconds,
                        args.connections,
                        (number + 1) * 1_000_000_000,
                    )
                finally:
                    done_during += asyncio.run(count_done(database_url)) - done_before
                    if worker is not None:
                        worker.terminate()
                        worker.wait()
                runs.append((ref, ours))
        finally:
            reference.terminate()
            reference.wait()
    finally:
        server.terminate()
        server.wait()
    acknowledged = sum(ours.requests - ours.non2xx for _, ours in runs)
    stored = asyncio.run(count_events(database_url, gateway_id))
    backend = database_url.split(":", 1)[0]
    mode = (
        " (ingest only)"
        if args.ingest_only
        else " (ingest server + worker process)"
        if args.separate_worker
        else " (ingest + processing in one process)"
    )
    print(
        f"database:            {backend}{mode}; {args.rounds} rounds of {args.seconds} s, {args.connections} connections"
    )
    for number, ((ref, ours), commit) in enumerate(zip(runs, commit_ms), 1):
        print(
            f"round {number}: reference {ref.rate:7.0f} req/s ({ref.cpu_us:4.0f} µs CPU/request)   "
            f"plugboard {ours.rate:7.0f} req/s ({ours.cpu_us:4.0f} µs CPU/request, non-2xx {ours.non2xx}, "
            f"socket errors {ours.errors})   ratio {ours.rate / ref.rate:.2f}   durable commit {commit:.2f} ms"
        )
    ratio = statistics.median(ours.rate / ref.rate for ref, ours in runs)
    cpu_ratio = statistics.median(ref.cpu_us / ours.cpu_us for ref, ours in runs)
    print(f"ratio (median):      {ratio:10.2f}  (target >= 0.6)")
    print(f"CPU per request:     {cpu_ratio:10.2f}  the reference's CPU per request / ours (median; 1.00 = as cheap)")
    print(f"durable commit:      {statistics.median(commit_ms):10.2f}  ms (median; each group commit waits for one)")
    print(f"acknowledged/stored: {acknowledged}/{stored}  ({'ok' if stored >= acknowledged else 'LOST UPDATES'})")
    print(f"processed meanwhile: {done_during / (args.seconds * args.rounds):10.0f} events/s")
    if args.ingest_only:
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        report(f"webhook ingest / bare Starlette, ingest-only, {label}", ratio, "≥ 0.6")
        report(f"webhook ingest / bare Starlette, ingest-only, {label}, by CPU per request", cpu_ratio, "≥ 0.6")
    if stored < acknowledged:
        raise SystemExit(1)
    if args.drain:
        drained = measure_drain(database_url, env, args.seconds)
        rate = statistics.median(ours.rate for _, ours in runs)
        print(
            f"processing:          {drained:10.0f} events/s  (one process, analytics installed; {drained / rate:.2f} of ingest)"
        )


if __name__ == "__main__":
    main()
