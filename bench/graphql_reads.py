"""GraphQL read throughput: `myPlugins` against trivial queries on the same server, in the same run.

    .venv/bin/python -m bench.graphql_reads [--database-url URL] [--seconds 5] [--connections 16] [--rounds 3]

One `python -m app serve` process (no inbox processing, no scheduler, no access log) and `wrk`
(Debian: apt-get install wrk) POSTing one request body over and over. Measured, round after round
so that the machine's noise falls on every case alike:

- `{ __typename }` with the user's API token, and without a token;
- `myPlugins`, as the My plugins page asks for it (16 fields an install), for a user with 5
  installs and one with 10; and a light `myPlugins` (4 fields an install) with 10 installs;
- the reference: a bare Strawberry `{ hello }` app with its parser and validation caches
  (bench/graphql_reference_app.py), one uvicorn process too.

Every case's answer is checked once before it is measured (no errors; the right number of
installs). Prints each round's req/s and the median of each ratio (the goals in brackets are
the first issue's, by req/s), then issue 27's rows by CPU for `make bench` (bench/ratios.py):
`{ __typename }` with a token / without (goal >= 0.8) and myPlugins (10 installs) / `{ __typename }`
with a token (goal >= 0.5).

On a shared machine req/s swing with what else runs, so the server's CPU time per request (its
utime + stime over the run, from /proc) is printed too: that ratio is what the req/s ratio
would be if the server had a core to itself (the database's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.accounts.models import Plan
from app.accounts.service import AccountService
from app.db import Database
from app.plugins.models import Plugin, UserPlugin
from bench.ratios import report

HERE = Path(__file__).parent
MY_PLUGINS = (
    "query Mine { myPlugins { id isEnabled config executionCount lastExecutedAt lastError "
    "plugin { id slug name description category version icon requiredGateways configSchema } } }"
)
# The same installs with little of each: what a status poll asks for.
MY_PLUGINS_LIGHT = "query Light { myPlugins { id isEnabled plugin { slug name } } }"
TYPENAME = "{ __typename }"
HELLO = "{ hello }"
CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "title": "Message", "maxLength": 4096},
        "chats": {"type": "array", "items": {"type": "integer"}, "title": "Chats"},
        "enabled": {"type": "boolean", "default": True},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Case:
    name: str
    port_of: str  # "app" or "reference"
    query: str
    token: str | None = None
    installs: int | None = None  # how many myPlugins must list


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(args: list[str], env: dict[str, str], ready_url: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{args[2]} exited with {process.returncode}")
        try:
            httpx.get(ready_url, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"{args[2]} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait()


async def prepare(database_url: str) -> dict[int, str]:
    """Two business-plan users (no install limit), with 5 and 10 installs of catalog plugins
    added for the bench: their API tokens by number of installs."""
    db = Database(database_url)
    await db.open()
    tokens: dict[int, str] = {}
    try:
        with db.bound():
            stamp = time.time_ns()
            plugins = [
                await Plugin.create(
                    slug=f"bench-{stamp}-{n}",
                    name=f"Bench plugin {n}",
                    description="A plugin of the read bench. " * 4,
                    required_gateways=["TELEGRAM_BOT"],
                    config_schema=CONFIG_SCHEMA,
                    category="bench",
                    icon="chart",
                    is_builtin=False,
                    is_active=True,
                )
                for n in range(10)
            ]
            for count in (5, 10):
                user, token = await AccountService().create_user(f"bench-{count}-{stamp}@example.com", Plan.BUSINESS)
                for plugin in plugins[:count]:
                    await UserPlugin.create(
                        user_id=user.id, plugin=plugin, config={"message": "hi", "chats": [1, 2, 3]}
                    )
                tokens[count] = token
    finally:
        await db.close()
    return tokens


def body_of(query: str) -> str:
    return json.dumps({"query": query})


def check(base: str, case: Case) -> None:
    headers = {"Authorization": f"Bearer {case.token}"} if case.token else {}
    answer: dict[str, Any] = httpx.post(f"{base}/graphql", json={"query": case.query}, headers=headers).json()
    if answer.get("errors") or not answer.get("data"):
        raise SystemExit(f"{case.name}: {answer}")
    if case.installs is not None and len(answer["data"]["myPlugins"]) != case.installs:
        raise SystemExit(f"{case.name}: expected {case.installs} installs, got {len(answer['data']['myPlugins'])}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    rate: float  # requests per second
    cpu_ms: float  # server CPU milliseconds per request


def run_wrk(base: str, case: Case, seconds: int, connections: int, server_pid: int) -> Run:
    env = {
        **os.environ,
        "GRAPHQL_BODY": body_of(case.query),
        "AUTHORIZATION": f"Bearer {case.token}" if case.token else "",
    }
    cpu_before = cpu_seconds(server_pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "graphql_post.lua"), base],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(server_pid) - cpu_before
    result = re.search(r"RESULT requests=(\d+) non2xx=(\d+) errors=(\d+)", out)
    if result is None or result.group(2) != "0" or result.group(3) != "0":
        raise SystemExit(f"{case.name}: wrk saw failures: {result.group(0) if result else out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Run(rate, cpu * 1000 / int(result.group(1)))


RATIOS = [
    ("myPlugins (10) / __typename (token)", "myPlugins, 10 installs", "__typename, token", 0.6),
    ("myPlugins (10) / __typename (no token)", "myPlugins, 10 installs", "__typename, no token", 0.6),
    ("light myPlugins (10) / __typename (token)", "light myPlugins, 10 installs", "__typename, token", 0.6),
    ("myPlugins (5) / __typename (token)", "myPlugins, 5 installs", "__typename, token", None),
    ("myPlugins (5) / Strawberry { hello }", "myPlugins, 5 installs", "reference { hello }", None),
    ("__typename (no token) / Strawberry { hello }", "__typename, no token", "reference { hello }", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")

    database_url = args.database_url or f"sqlite://{tempfile.mkdtemp(prefix='plugboard-bench-')}/bench.sqlite3"
    python = sys.executable
    env = {"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false", "ACCESS_LOG": "false", "INBOX_CONCURRENCY": "0"}
    ports = {"app": free_port(), "reference": free_port()}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    server = serve([python, "-m", "app", "serve", "--port", str(ports["app"])], env, f"{bases['app']}/healthz")
    reference = None
    try:
        tokens = asyncio.run(prepare(database_url))
        reference = serve(
            [
                python,
                "-m",
                "uvicorn",
                "bench.graphql_reference_app:app",
                "--port",
                str(ports["reference"]),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {},
            f"{bases['reference']}/graphql?query=%7Bhello%7D",
            cwd=HERE.parent,
        )
        cases = [
            Case("reference { hello }", "reference", HELLO),
            Case("__typename, no token", "app", TYPENAME),
            Case("__typename, token", "app", TYPENAME, tokens[10]),
            Case("myPlugins, 5 installs", "app", MY_PLUGINS, tokens[5], 5),
            Case("myPlugins, 10 installs", "app", MY_PLUGINS, tokens[10], 10),
            Case("light myPlugins, 10 installs", "app", MY_PLUGINS_LIGHT, tokens[10], 10),
        ]
        for case in cases:
            check(bases[case.port_of], case)
        rounds: list[dict[str, Run]] = []
        pids = {"app": server.pid, "reference": reference.pid}
        for number in range(1, args.rounds + 1):
            runs = {
                case.name: run_wrk(bases[case.port_of], case, args.seconds, args.connections, pids[case.port_of])
                for case in cases
            }
            rounds.append(runs)
            print(f"round {number}: " + ", ".join(f"{name} {run.rate:,.0f}" for name, run in runs.items()), flush=True)
    finally:
        stop(server)
        if reference is not None:
            stop(reference)

    backend = database_url.split(":", 1)[0]
    print(f"\ndatabase: {backend}; wrk -t2 -c{args.connections} -d{args.seconds}s; {args.rounds} rounds, medians")
    print(f"  {'case':<30} {'req/s':>9}  {'server CPU ms/request':>22}")
    for case in cases:
        rate = statistics.median(r[case.name].rate for r in rounds)
        cpu = statistics.median(r[case.name].cpu_ms for r in rounds)
        print(f"  {case.name:<30} {rate:>9,.0f}  {cpu:>22.3f}")
    print(f"  {'ratio':<46} {'req/s':>6} {'by CPU':>7}  [req/s ratio of each round]")
    for label, top, bottom, goal in RATIOS:
        ratios = [r[top].rate / r[bottom].rate for r in rounds]
        by_cpu = statistics.median(r[bottom].cpu_ms / r[top].cpu_ms for r in rounds)
        target = f"  (goal >= {goal})" if goal else ""
        shown = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"  {label:<46} {statistics.median(ratios):>6.2f} {by_cpu:>7.2f}  [{shown}]{target}")
    # Issue 27's rows of the throughput table (docs/benchmarks.md), by CPU: what the req/s ratios
    # would be with a core to itself.
    report(
        "{ __typename } with a token / without, by CPU",
        cpu_ratio(rounds, "__typename, no token", "__typename, token"),
        "≥ 0.8",
    )
    report(
        "myPlugins (10 installs) / { __typename } with a token, by CPU",
        cpu_ratio(rounds, "__typename, token", "myPlugins, 10 installs"),
        "≥ 0.5",
    )


def cpu_ratio(rounds: list[dict[str, Run]], cheaper: str, dearer: str) -> float:
    """The median over rounds of `cheaper`'s server CPU per request over `dearer`'s."""
    return statistics.median(r[cheaper].cpu_ms / r[dearer].cpu_ms for r in rounds)


if __name__ == "__main__":
    main()
