"""Webhook ingest throughput against a bare Starlette endpoint, measured in the same run.

    .venv/bin/python -m bench.webhook_ingest [--database-url URL] [--seconds 10] [--connections 32]
        [--ingest-only] [--drain]

Needs `wrk` (Debian: apt-get install wrk). Prints requests/s of both and their ratio; every
acknowledged update is checked to be in the database afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.accounts.service import create_user
from app.db import Database
from app.gateways.models import EventStatus, Gateway, GatewayEvent, GatewayType
from app.ids import new_secret
from app.plugins.models import Plugin, UserPlugin

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


def run_wrk(url: str, path: str, secret: str, seconds: int, connections: int) -> tuple[float, str]:
    env = {**os.environ, "WEBHOOK_PATH": path, "WEBHOOK_SECRET": secret}
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "post_update.lua"), url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = re.search(r"RESULT .*", out)
    return rate, result.group(0) if result else ""


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
        user, _ = await create_user(f"bench-{time.time_ns()}@example.com")
        secret = new_secret()
        gateway = await Gateway.create(
            owner_id=user.id, type=GatewayType.TELEGRAM_BOT, name="bench", bot_token="0:bench",
            webhook_secret=secret,
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
    server = serve([sys.executable, "-m", "app", "serve", "--port", str(port)], {**env, "INBOX_CONCURRENCY": "16"}, "/healthz", port)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ingest-only", action="store_true", help="no processing in the server (INBOX_CONCURRENCY=0)")
    parser.add_argument("--drain", action="store_true", help="then measure how fast one process works off the backlog")
    parser.add_argument(
        "--separate-worker", action="store_true",
        help="an ingest-only server plus one `python -m app worker` process working meanwhile",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")

    workdir = tempfile.mkdtemp(prefix="plugboard-bench-")
    database_url = args.database_url or f"sqlite://{workdir}/bench.sqlite3"
    # Start the server once so the catalog (and analytics) exists, then make the bench user.
    python = sys.executable
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "false",
        "ACCESS_LOG": "false",  # the reference logs no requests either
        "INBOX_CONCURRENCY": "0" if args.ingest_only or args.separate_worker else os.environ.get("INBOX_CONCURRENCY", "16"),
    }
    server = serve([python, "-m", "app", "serve", "--port", str(port)], env, "/healthz", port)
    try:
        gateway_id, secret = asyncio.run(prepare(database_url))
        path = f"/webhooks/telegram/{gateway_id}"
        ref_port = free_port()
        reference = serve(
            [python, "-m", "uvicorn", "bench.reference_app:app", "--port", str(ref_port), "--log-level", "warning"],
            {}, "/", ref_port,
        )
        try:
            ref_rate, ref_result = run_wrk(f"http://127.0.0.1:{ref_port}", path, secret, args.seconds, args.connections)
        finally:
            reference.terminate()
            reference.wait()
        worker = None
        if args.separate_worker:
            worker = subprocess.Popen(
                [python, "-m", "app", "worker"], env={**os.environ, **env, "INBOX_CONCURRENCY": "16"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(3)
        done_before = asyncio.run(count_done(database_url))
        try:
            rate, result = run_wrk(f"http://127.0.0.1:{port}", path, secret, args.seconds, args.connections)
        finally:
            done_during = asyncio.run(count_done(database_url)) - done_before
            if worker is not None:
                worker.terminate()
                worker.wait()
    finally:
        server.terminate()
        server.wait()
    acknowledged = int(re.search(r"requests=(\d+)", result).group(1)) - int(re.search(r"non2xx=(\d+)", result).group(1))  # type: ignore[union-attr]
    stored = asyncio.run(count_events(database_url, gateway_id))
    backend = database_url.split(":", 1)[0]
    mode = " (ingest only)" if args.ingest_only else " (ingest server + worker process)" if args.separate_worker else " (ingest + processing in one process)"
    print(f"database:            {backend}{mode}")
    print(f"reference (bare):    {ref_rate:10.0f} req/s   {ref_result}")
    print(f"plugboard webhook:   {rate:10.0f} req/s   {result}")
    print(f"ratio:               {rate / ref_rate:10.2f}  (target >= 0.50)")
    print(f"acknowledged/stored: {acknowledged}/{stored}  ({'ok' if stored >= acknowledged else 'LOST UPDATES'})")
    print(f"processed meanwhile: {done_during / args.seconds:10.0f} events/s")
    if stored < acknowledged:
        raise SystemExit(1)
    if args.drain:
        drained = measure_drain(database_url, env, args.seconds)
        print(f"processing:          {drained:10.0f} events/s  (one process, analytics installed; {drained / rate:.2f} of ingest)")


if __name__ == "__main__":
    main()
