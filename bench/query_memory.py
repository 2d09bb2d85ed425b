"""Resident memory of `python -m app serve` under streams of distinct GraphQL documents.

    .venv/bin/python -m bench.query_memory [--root DIR] [--count 300]

Serves the app at DIR (default: this checkout) on SQLite, then sends, one after another, each
phase's distinct anonymous queries and reads the server's RSS (VmRSS) after each phase:

- `huge`: `count` documents of about 990 KB (a string literal), the issue's reproduction;
- `limit`: `count` documents just under MAX_QUERY_BYTES (about 99 KB), parsed and answered;
- `dense`: 1,000 small documents at the token limit (about 4 KB and 2,000 tokens each), the
  most AST per byte a document can cost; they fail validation, and their errors are kept too.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def documents(phase: str, count: int) -> list[str]:
    if phase == "huge":
        return [f'{{ plugin(slug: "{secrets.token_hex(495_000)}") {{ id }} }}' for _ in range(count)]
    if phase == "limit":
        return [f'{{ plugin(slug: "{secrets.token_hex(49_450)}") {{ id }} }}' for _ in range(count)]
    # about 1,990 tokens in 4 KB: the densest AST a document under the token limit can have
    return [f"{{ f{n}" + " a" * 1_988 + " }" for n in range(1_000)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite://{data}/bench.sqlite3",
            "ACCESS_LOG": "false",
            "SCHEDULER_ENABLED": "false",
            "PYTHONPATH": args.root,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=args.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(300):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                client.post("/graphql", json={"query": "{ plugins { slug } }"})
                print(f"{args.root}: started, {rss_mb(server.pid):.0f} MB")
                for phase in ("huge", "limit", "dense"):
                    statuses: dict[int, int] = {}
                    for query in documents(phase, args.count):
                        status = client.post("/graphql", json={"query": query}).status_code
                        statuses[status] = statuses.get(status, 0) + 1
                    print(f"  after {phase:5}: {rss_mb(server.pid):6.0f} MB  (HTTP statuses {statuses})")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
