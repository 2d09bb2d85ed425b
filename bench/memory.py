"""Resident memory (VmRSS) of Plugboard's processes, idle, against a bare Starlette app started the same way.

    .venv/bin/python -m bench.memory [--database-url URL] [--settle 2]

Each process is started as an operator starts it, waited for until it is ready (its HTTP answers,
or its "started" line), left to settle for `--settle` seconds, and its VmRSS read from
/proc/PID/status. The aim: an ingest-only `serve` (INBOX_CONCURRENCY=0) under 100 MiB. A worker is
measured idle, then once it has processed an update: parsing one is what loads aiogram's types.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.ratios import report
from bench.webhook_ingest import count_done, free_port, prepare, wait_ready

TARGET_MIB = 100
WORKER_TARGET_MIB = 110
UPDATE = (
    '{"update_id":1,"message":{"message_id":1,"date":1700000000,"chat":{"id":-1001,"type":"supergroup",'
    '"title":"Bench"},"from":{"id":1000,"is_bot":false,"first_name":"Bench"},"text":"hello"}}'
)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def wait_for_line(process: subprocess.Popen[bytes], log: Path, text: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{process.args!r} did not print {text!r} in {seconds} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def settled_rss(process: subprocess.Popen[bytes], settle: float) -> float:
    time.sleep(settle)
    return rss_mib(process.pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between ready and reading RSS")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="plugboard-memory-"))
    database_url = args.database_url or f"sqlite://{workdir}/memory.sqlite3"
    python = sys.executable
    env = {"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false", "ACCESS_LOG": "false"}
    rows: list[tuple[str, float]] = []

    def script(name: str, code: str) -> None:
        process = start(
            [python, "-c", f"{code}\nprint('ready', flush=True)\nimport time; time.sleep(600)"],
            {},
            workdir / f"{name}.log",
        )
        try:
            wait_for_line(process, workdir / f"{name}.log", "ready")
            rows.append((name, settled_rss(process, args.settle)))
        finally:
            stop(process)

    def http_server(name: str, command: list[str], extra: dict[str, str], ready_path: str) -> subprocess.Popen[bytes]:
        port = free_port()
        process = start([*command, "--port", str(port)], {**env, **extra}, workdir / f"{name}.log")
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", process)
        process.port = port  # type: ignore[attr-defined]
        return process

    script("python, bare interpreter", "pass")
    script("python importing aiogram.types", "import aiogram.types")
    reference = http_server(
        "reference", [python, "-m", "uvicorn", "bench.reference_app:app", "--log-level", "warning"], {}, "/"
    )
    try:
        reference_mib = settled_rss(reference, args.settle)
        rows.append(("bare Starlette + uvicorn (the reference)", reference_mib))
    finally:
        stop(reference)

    serve = http_server("serve", [python, "-m", "app", "serve"], {"INBOX_CONCURRENCY": "0"}, "/healthz")
    try:
        ingest_mib = settled_rss(serve, args.settle)
        rows.append(("serve, ingest only (INBOX_CONCURRENCY=0)", ingest_mib))
        gateway_id, secret = asyncio.run(prepare(database_url))
        worker_log = workdir / "worker.log"
        worker = start([python, "-m", "app", "worker"], {**env, "INBOX_CONCURRENCY": "16"}, worker_log)
        try:
            wait_for_line(worker, worker_log, "worker started")
            worker_idle_mib = settled_rss(worker, args.settle)
            rows.append(("worker, idle", worker_idle_mib))
            response = httpx.post(
                f"http://127.0.0.1:{serve.port}/webhooks/telegram/{gateway_id}",  # type: ignore[attr-defined]
                content=UPDATE,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
                timeout=10,
            )
            response.raise_for_status()
            deadline = time.monotonic() + 30
            while asyncio.run(count_done(database_url)) < 1:
                if time.monotonic() > deadline:
                    raise SystemExit("the worker did not process the update in 30 s")
                time.sleep(0.2)
            rows.append(("worker, after processing one update", settled_rss(worker, args.settle)))
            rows.append(("serve, ingest only, after taking one update", rss_mib(serve.pid)))
        finally:
            stop(worker)
    finally:
        stop(serve)
    processing = http_server(
        "serve-processing", [python, "-m", "app", "serve"], {"INBOX_CONCURRENCY": "16"}, "/healthz"
    )
    try:
        rows.append(("serve with processing (INBOX_CONCURRENCY=16), idle", settled_rss(processing, args.settle)))
    finally:
        stop(processing)

    print(f"database: {database_url.split(':', 1)[0]}; RSS read {args.settle:g} s after each process was ready")
    print(f"{'process':55} {'RSS MiB':>8} {'x reference':>12}")
    for name, mib in rows:
        print(f"{name:55} {mib:8.1f} {mib / reference_mib:12.2f}")
    verdict = "met" if ingest_mib < TARGET_MIB else "NOT met"
    print(f"ingest-only serve: {ingest_mib:.1f} MiB (target < {TARGET_MIB} MiB: {verdict})")
    report("worker idle RSS, MiB", worker_idle_mib, f"< {WORKER_TARGET_MIB} MiB")


if __name__ == "__main__":
    main()
