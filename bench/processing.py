"""Event processing throughput: events fully processed per second by worker processes, against a
minimal batch processor doing the same durable work on the same database (bench/reference_batch.py),
measured in the same run.

    .venv/bin/python -m bench.processing [--cases pg,sqlite,pg-10,pg-2w,pg-claims] [--runs 1] [--seconds 5]

Cases (each on a fresh database, PostgreSQL at BENCH_POSTGRES_URL or --postgres-url):
- `pg`, `sqlite`: one `python -m app worker`, the built-in analytics plugin installed for the
  owner of one active Telegram gateway;
- `pg-10`, `sqlite-10`: one worker process (bench/counter_worker.py: the app's Platform with 10 counter
  plugins, all installed for that user), so every event runs 10 installs;
- `pg-2w`: two `python -m app worker` processes, analytics, against `pg`'s one worker;
- `pg-claims`, `sqlite-claims`: two processes claiming at once with the app's own claim, processing
  nothing (bench/claim_probe.py): a claim that gets less than it asked while events are pending is a
  collision.

The inbox (`gateway_events`) is filled, in one transaction each time, with pending Telegram message
updates spread over 100 chats. Each worker first takes a warm-up batch of its own while the others
are paused (SIGSTOP), so start-up and what a fresh worker does once are not measured (the time its
first batch took is printed); then batches sized from the last rate so that one lasts about
`--seconds`. The rate is the events done between the first poll that sees one of the batch done and
the poll that sees all of it, over that time. Afterwards every event must be done, with exactly one run record per install and
event, the install's counters equal to the number of messages, and `execution_count` likewise;
the script exits 1 otherwise. Claims are counted from the events' claim tokens.

Run it from the checkout to measure: the workers and the preparation use that checkout's `app`.
The workers log at WARNING (BENCH_LOG_LEVEL=DEBUG for more); a run's first log lines are printed,
and the logs are kept (with the SQLite files) under --keep or when a run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from bench import pg, reference_batch
from bench.ratios import report
from bench.updates import chat_id, distinct_senders, update_json

CHATS = 100
WARM_UP = 128
MIN_BATCH = 300
POLL_SECONDS = 0.02
BUSY_POLL_SECONDS = 0.05
COUNT_SECONDS = 1.0  # while a batch runs, its events are counted this often (else: any left?)
STALL_SECONDS = 60.0  # no event done for this long: the run failed
CASES = ("pg", "sqlite", "pg-10", "pg-2w", "pg-claims")
KNOWN_CASES = (*CASES, "sqlite-10", "sqlite-claims")
CLAIM_LIMIT = 128
CLAIM_PROBES = 2
CLAIMS_EACH = 40
# The throughput issue's goals (docs/benchmarks.md), each ratio against the reference of the same run.
TARGETS = {"pg": 0.8, "sqlite": 0.6, "pg-10": 0.3, "sqlite-10": 0.2}
RATIO_LABELS = {  # the table's rows, for bench.ratios.report
    "pg": "processing, analytics, 1 worker, PostgreSQL / reference",
    "sqlite": "processing, analytics, 1 worker, SQLite / reference",
    "pg-10": "processing, 10 installs on one event, PostgreSQL / reference",
}
SCALE_TARGET = 1.6


@dataclass(frozen=True)
class Case:
    name: str
    backend: str  # postgres or sqlite
    installs: int  # 1: analytics; more: counter plugins
    workers: int = 1

    @property
    def plugin(self) -> str:
        return "analytics" if self.installs == 1 else "counters"

    def describe(self) -> str:
        what = "analytics" if self.installs == 1 else f"{self.installs} counter installs"
        return f"{self.backend}, {what}, {self.workers} worker{'s' if self.workers > 1 else ''}"


def case(name: str) -> Case:
    backend = "postgres" if name.startswith("pg") else "sqlite"
    installs = 10 if name.endswith("-10") else 1
    workers = 2 if name.endswith("-2w") else CLAIM_PROBES if name.endswith("-claims") else 1
    return Case(name, backend, installs, workers)


@dataclass
class Measurement:
    rate: float
    events: int  # in the measured batch
    seconds: float
    total: int  # events in the inbox at the end
    claims: Counter[int] = field(default_factory=Counter)  # claim size -> how many claims
    reclaimed: int = 0  # events claimed more than once
    problems: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    first_batches: list[float] = field(default_factory=list)  # per worker: its first batch, claimed to done
    cpu_per_event: float = 0.0  # the workers' CPU seconds (user + system) over the measured batch, an event
    database_cpu_per_event: float = 0.0  # the same of the local PostgreSQL server's processes (0 on SQLite)


# --- the product's database, raw --------------------------------------------------------------


class Store:
    """Fills, polls and checks the product's tables, past the app (so it costs the workers little)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = pg.is_postgres(url)
        self._pg: asyncpg.Connection | None = None
        self._sqlite: aiosqlite.Connection | None = None
        self.filled = 0  # events in the inbox: what it held at open, and every fill since

    async def open(self) -> None:
        if self.postgres:
            # A bitmap scan never marks the index entries of rows the workers have updated as dead,
            # so every poll would walk all of them again; an index scan marks those no transaction
            # can see, and the next poll skips them (measured on an idle inbox: 0.3 ms a poll
            # instead of 4-8 ms; while the workers run a poll still costs a few ms).
            self._pg = await asyncpg.connect(pg.dsn(self.url), server_settings={"enable_bitmapscan": "off"})
        else:
            self._sqlite = await aiosqlite.connect(
                self.url.removeprefix("sqlite://").split("?", 1)[0], isolation_level=None
            )
            await self._sqlite.execute("PRAGMA busy_timeout=30000")
        self.filled = int(await self.value("SELECT count(*) FROM gateway_events"))

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            await self._sqlite.close()

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._pg is not None:
            parts = sql.split("?")
            sql = "".join(part + (f"${n + 1}" if n < len(parts) - 1 else "") for n, part in enumerate(parts))
            return [tuple(r) for r in await self._pg.fetch(sql, *args)]
        assert self._sqlite is not None
        async with self._sqlite.execute(sql, args) as cursor:
            return [tuple(r) for r in await cursor.fetchall()]

    async def value(self, sql: str, *args: Any) -> Any:
        found = await self.rows(sql, *args)
        return found[0][0] if found else None

    async def done(self) -> tuple[int, int]:
        """(done, failed) of all the events filled. Polled while the workers run, so it counts
        through the (status, id) index the rows not done yet, not the whole inbox."""
        row = (
            await self.rows(
                "SELECT sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), count(*) FROM gateway_events "
                "WHERE status IN ('pending', 'processing', 'failed')"
            )
        )[0]
        failed, unfinished = int(row[0] or 0), int(row[1] or 0)
        return self.filled - unfinished, failed

    async def any_unfinished(self) -> bool:
        """Whether an event is still pending or processing: the first live entry of the claimable
        index, where `done` walks every row not done yet (3.5 ms a poll on PostgreSQL at the start
        of a batch of 10,000 events, by pg_stat_statements: a load on the database that the
        reference, which is not polled, never has)."""
        return bool(
            await self.value("SELECT EXISTS (SELECT 1 FROM gateway_events WHERE status IN ('pending', 'processing'))")
        )

    async def fill(self, gateway_id: str, first: int, count: int, date: int) -> int:
        """Adds `count` pending updates numbered from `first`, in one transaction; returns the largest id before."""
        before = int(await self.value("SELECT coalesce(max(id), 0) FROM gateway_events"))
        self.filled += count
        now = datetime.now(UTC)
        numbers = range(first, first + count)
        if self._pg is not None:
            await self._pg.copy_records_to_table(
                "gateway_events",
                records=[
                    (gateway_id, "update", str(n), chat_id(n, CHATS), update_json(n, CHATS, date), "pending", 0, now)
                    for n in numbers
                ],
                columns=["gateway_id", "kind", "key", "chat_id", "payload", "status", "attempts", "received_at"],
            )
            return before
        assert self._sqlite is not None
        await self._sqlite.execute("BEGIN IMMEDIATE")
        await self._sqlite.executemany(
            "INSERT INTO gateway_events (gateway_id, kind, key, chat_id, payload, status, attempts, received_at) "
            "VALUES (?, 'update', ?, ?, ?, 'pending', 0, ?)",
            [(gateway_id, str(n), chat_id(n, CHATS), update_json(n, CHATS, date), str(now)) for n in numbers],
        )
        await self._sqlite.commit()
        return before


# --- preparing the product's database --------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    gateway_id: str
    installs: dict[str, str]  # install id -> plugin slug


async def prepare(database_url: str, kase: Case) -> Setup:
    """Migrates, syncs the catalog, and makes a user with an active gateway and the case's installs."""
    from app.accounts.models import Plan
    from app.accounts.service import AccountService
    from app.db import Database
    from app.gateways.models import Gateway, GatewayType, new_gateway_columns
    from app.plugins.catalog import CatalogService
    from app.plugins.contract import PluginHandler
    from app.plugins.handlers import BUILTIN_HANDLERS
    from app.plugins.models import Plugin, UserPlugin
    from app.plugins.registry import PluginRegistry

    handlers: list[PluginHandler]
    if kase.plugin == "analytics":
        handlers = [h() for h in BUILTIN_HANDLERS]
        configs = {"analytics": {"trackUsers": True, "retention": 30}}
    else:
        from bench.counter_worker import counter_handlers

        handlers = counter_handlers(kase.installs)
        configs = {h.slug: {} for h in handlers}
    db = Database(database_url)
    await db.open(create=True)
    try:
        await db.migrate()
        with db.bound():
            await CatalogService(PluginRegistry(handlers)).sync()
            user, _ = await AccountService().create_user(f"bench-{time.time_ns()}@example.com", plan=Plan.BUSINESS)
            gateway = await Gateway.create(
                owner_id=user.id,
                type=GatewayType.TELEGRAM_BOT,
                name="bench",
                **new_gateway_columns("0:bench", "bench-secret"),
            )
            installs = {}
            for slug, config in configs.items():
                plugin = await Plugin.get(slug=slug)
                install = await UserPlugin.create(user_id=user.id, plugin=plugin, config=config)
                installs[install.id] = slug
    finally:
        await db.close()
    return Setup(gateway.id, installs)


# --- the workers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env(database_url: str, concurrency: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "false",
        # Nothing listens there: analytics and the counters never call Telegram.
        "TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}",
        "BROADCAST_URL": "memory://",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),  # the workers log to --keep's directory
    }
    if concurrency is not None:
        env["INBOX_CONCURRENCY"] = str(concurrency)
    return env


def start_workers(
    kase: Case, database_url: str, concurrency: int | None, logdir: Path
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    command = (
        [sys.executable, "-m", "app", "worker"]
        if kase.plugin == "analytics"
        else [sys.executable, "-m", "bench.counter_worker", "--plugins", str(kase.installs)]
    )
    workers = []
    for n in range(kase.workers):
        log = logdir / f"worker-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=worker_env(database_url, concurrency), stdout=out, stderr=subprocess.STDOUT
            )
        workers.append((process, log))
    return workers


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> list[str]:
    """SIGTERM, then a wait; returns the lines the workers logged at WARNING and above."""
    for process, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    lines = []
    for process, log in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            lines.append(f"{log.name}: did not stop within 30 s of SIGTERM; killed")
        lines += [f"{log.name}: {line}" for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines


# --- measuring --------------------------------------------------------------------------------


async def batch(
    store: Store, setup: Setup, first: int, count: int, date: int, workers: list[tuple[subprocess.Popen[bytes], Path]]
) -> tuple[float, float, float, int, tuple[float, float]]:
    """Fills `count` events and waits until all are done; (rate, seconds measured, seconds from the
    fill's commit to the last done, largest id before, (the workers', the database's) CPU seconds an event)."""
    done_before, failed_before = await store.done()
    before = await store.fill(setup.gateway_id, first, count, date)
    cpu_before, database_before = cpu_seconds(workers), database_cpu_seconds()  # the fill is the bench's
    filled_at = time.perf_counter()
    seen_at: float | None = None
    seen = 0
    progress_at = time.perf_counter()
    last = 0
    counted_at = time.perf_counter()
    while True:
        now = time.perf_counter()
        # Counted while nothing is done yet (to see the first), and once a second for progress and
        # failures; in between, only whether any event is left.
        if seen_at is None or now - counted_at >= COUNT_SECONDS or not await store.any_unfinished():
            done, failed = await store.done()
            done -= done_before
            now = counted_at = time.perf_counter()
            if done > 0 and seen_at is None:
                seen_at, seen = now, done
            if done >= count:
                break
            if failed > failed_before and done + failed - failed_before >= count:
                raise RuntimeError(f"{failed - failed_before} events failed")
            if done > last:
                last, progress_at = done, now
            elif now - progress_at > STALL_SECONDS:
                raise RuntimeError(f"no event done for {STALL_SECONDS:.0f} s ({done} of {count} done)")
        for process, log in workers:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a worker exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}"
                )
        await asyncio.sleep(POLL_SECONDS if seen_at is None else BUSY_POLL_SECONDS)
    assert seen_at is not None
    seconds = now - seen_at
    if seconds <= 0:  # never a rate of "infinity", which would meet any target
        raise RuntimeError(
            f"the batch of {count} events was done within one poll: too short to measure (more --seconds)"
        )
    rate = (count - seen) / seconds
    cpu = (cpu_seconds(workers) - cpu_before) / count, (database_cpu_seconds() - database_before) / count
    return rate, seconds, now - filled_at, before, cpu


def cpu_seconds(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> float:
    """The workers' CPU time so far (user + system, all threads), from /proc; 0 where there is none."""
    ticks = 0
    for process, _ in workers:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds() -> float:
    """The CPU time so far of this machine's PostgreSQL server processes (the benchmarks' server is
    local), from /proc; what the workers' statements cost the database, beside what the workers spend."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if name.endswith("(postgres"):
            values = fields.split()
            ticks += int(values[11]) + int(values[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def verify(store: Store, setup: Setup, kase: Case) -> list[str]:
    """What is wrong with the end state (empty when exactly-once held)."""
    problems = []
    total = int(await store.value("SELECT count(*) FROM gateway_events"))
    statuses = dict(await store.rows("SELECT status, count(*) FROM gateway_events GROUP BY status"))
    if statuses.get("done", 0) != total:
        problems.append(f"events by status: {statuses} (expected all {total} done)")
    runs = {
        row[0]: row[1:]
        for row in await store.rows(
            "SELECT install_id, count(*), count(DISTINCT event_key), sum(CASE WHEN success THEN 1 ELSE 0 END) "
            "FROM plugin_executions GROUP BY install_id"
        )
    }
    counts = dict(await store.rows("SELECT id, execution_count FROM user_plugins"))
    for install, slug in setup.installs.items():
        records, distinct, succeeded = runs.get(install, (0, 0, 0))
        if (records, distinct, succeeded) != (total, total, total):
            problems.append(
                f"{slug}: {records} run records, {distinct} distinct events, {succeeded} "
                f"succeeded (expected {total} each)"
            )
        if counts.get(install) != total:
            problems.append(f"{slug}: execution_count {counts.get(install)} (expected {total})")
        if slug == "analytics":
            received = await store.value("SELECT sum(received) FROM analytics_chats WHERE install_id = ?", install)
            hourly = await store.value("SELECT sum(received) FROM analytics_buckets WHERE install_id = ?", install)
            users = await store.value(
                "SELECT COUNT(DISTINCT user_id) FROM analytics_user_days WHERE install_id = ? AND chat_id = 0", install
            )
            if (received, hourly) != (total, total):
                problems.append(
                    f"analytics: {received} received in chat totals, {hourly} in buckets (expected {total})"
                )
            if users != distinct_senders(total):
                problems.append(f"analytics: {users} distinct users today (expected {distinct_senders(total)})")
        else:
            value = await store.value(
                "SELECT value FROM plugin_storage WHERE install_id = ? AND key = 'messages'", install
            )
            counted = json.loads(value) if isinstance(value, str) else value
            if counted is None or float(counted) != total:
                problems.append(f"{slug}: counter {counted} (expected {total})")
    return problems


async def measure_product(
    kase: Case, database_url: str, seconds: float, concurrency: int | None, max_events: int, logdir: Path
) -> Measurement:
    setup = await prepare(database_url, kase)
    store = Store(database_url)
    await store.open()
    date = int(time.time())
    workers = []
    try:
        workers = start_workers(kase, database_url, concurrency, logdir)
        pace, firsts, first = await warm_up(store, setup, workers, date)
        # Batches are sized by a rate that counts the time to pick the batch up (never too high),
        # and grow at most 8-fold a step, until one lasts at least half of `seconds`.
        events = WARM_UP
        for _ in range(5):
            events = int(min(max(pace * seconds, MIN_BATCH), events * 8, max_events))
            rate, took, elapsed, before, cpu = await batch(store, setup, first, events, date, workers)
            first += events
            pace = events / elapsed
            if took >= seconds / 2 or events >= max_events:
                break
        claims = Counter(
            size
            for (size,) in await store.rows("SELECT count(*) FROM gateway_events WHERE id > ? GROUP BY claim", before)
        )
        reclaimed = int(await store.value("SELECT count(*) FROM gateway_events WHERE id > ? AND attempts > 1", before))
    finally:
        log_lines = stop_workers(workers)
    try:
        problems = await verify(store, setup, kase)
        total = int(await store.value("SELECT count(*) FROM gateway_events"))
    finally:
        await store.close()
    return Measurement(rate, events, took, total, claims, reclaimed, problems, log_lines, firsts, *cpu)


async def warm_up(
    store: Store, setup: Setup, workers: list[tuple[subprocess.Popen[bytes], Path]], date: int
) -> tuple[float, list[float], int]:
    """Each worker in turn takes a warm-up batch while the others are paused (SIGSTOP), so that
    what a fresh worker does once (imports, caches) is never measured, and every worker has done
    it. Returns the last warm-up's pace (events a second, pick-up included), each worker's seconds
    from claiming its batch to its last event done, and the next update number."""
    first = 1
    pace = 0.0
    firsts = []
    for n in range(len(workers)):
        others = [process for m, (process, _) in enumerate(workers) if m != n]
        for process in others:
            process.send_signal(signal.SIGSTOP)
        try:
            await store.fill(setup.gateway_id, first, WARM_UP, date)
            first += WARM_UP
            pace, took = await _wait_warm(store, workers, first - 1)
            firsts.append(took)
        finally:
            for process in others:
                process.send_signal(signal.SIGCONT)
    return pace, firsts, first


async def _wait_warm(
    store: Store, workers: list[tuple[subprocess.Popen[bytes], Path]], total: int
) -> tuple[float, float]:
    """Waits until `total` events are done (the worker may still be starting); (pace, seconds from
    the warm-up batch's claim to its last event done)."""
    started = time.perf_counter()
    claimed_at: float | None = None
    seen_at: float | None = None
    while True:
        done, failed = await store.done()
        pending = int(await store.value("SELECT count(*) FROM gateway_events WHERE status = 'pending'"))
        now = time.perf_counter()
        if pending == 0 and claimed_at is None:
            claimed_at = now
        if done > total - WARM_UP and seen_at is None:
            seen_at = now
        if done + failed >= total:
            break
        if now - started > STALL_SECONDS + 30:
            raise RuntimeError(f"the warm-up did not finish: {done} of {total} done after {now - started:.0f} s")
        for process, log in workers:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a worker exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}"
                )
        await asyncio.sleep(POLL_SECONDS)
    if failed:
        raise RuntimeError(f"{failed} warm-up events failed")
    assert seen_at is not None
    return WARM_UP / (now - seen_at + POLL_SECONDS), now - (claimed_at or now)


async def run_case(kase: Case, args: argparse.Namespace, logdir: Path) -> Measurement:
    if kase.backend == "postgres":
        async with pg.scratch_database(args.postgres_url, keep=args.keep) as url:
            return await measure_product(kase, url, args.seconds, args.concurrency, args.max_events, logdir)
    workdir = tempfile.mkdtemp(prefix="sqlite-", dir=logdir)
    try:
        return await measure_product(
            kase, f"sqlite://{workdir}/bench.sqlite3", args.seconds, args.concurrency, args.max_events, logdir
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def probe_claims(kase: Case, database_url: str) -> tuple[str, bool]:
    """Two processes claim at once with the app's claim (bench/claim_probe.py); (a line, whether it held)."""
    setup = await prepare(database_url, kase)
    store = Store(database_url)
    await store.open()
    events = CLAIM_LIMIT * kase.workers * CLAIMS_EACH
    try:
        await store.fill(setup.gateway_id, 1, events, int(time.time()))
        start = time.time() + 4  # after both have imported the app and connected
        command = [
            sys.executable,
            "-m",
            "bench.claim_probe",
            "--database-url",
            database_url,
            "--limit",
            str(CLAIM_LIMIT),
            "--start",
            str(start),
        ]
        probes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(kase.workers)
        ]
        outputs = [p.communicate(timeout=300) for p in probes]
        for process, (_, err) in zip(probes, outputs):
            if process.returncode != 0:
                return f"a claim probe failed: {err.strip()[-1500:]}", False
        found = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        twice = int(await store.value("SELECT count(*) FROM gateway_events WHERE attempts <> 1"))
    finally:
        await store.close()
    sizes = [size for f in found for size in f["sizes"]]
    partial = sum(1 for size in sizes if size < CLAIM_LIMIT)
    empty = sum(f["empty_while_pending"] for f in found)
    held = sum(sizes) == events and twice == 0
    line = (
        f"{kase.workers} processes claiming {events} events, {CLAIM_LIMIT} at a time: {len(sizes)} claims; "
        f"{partial + empty} got less than asked while events were pending ({partial} partial, {empty} empty); "
        f"claims per process {'/'.join(str(len(f['sizes'])) for f in found)}; {sum(sizes)} claimed, "
        f"{twice} events claimed other than once"
    )
    return line, held


async def run_probe(kase: Case, args: argparse.Namespace, logdir: Path) -> tuple[str, bool]:
    if kase.backend == "postgres":
        async with pg.scratch_database(args.postgres_url, keep=args.keep) as url:
            return await probe_claims(kase, url)
    workdir = tempfile.mkdtemp(prefix="sqlite-", dir=logdir)
    try:
        return await probe_claims(kase, f"sqlite://{workdir}/bench.sqlite3")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def run_reference(kase: Case, args: argparse.Namespace) -> reference_batch.Result:
    """Half the reference's events (a third of that with 10 installs): it runs before the product
    and again after it, and their sum is taken, so that a change in the machine's load between
    the two sides weighs on both."""
    events = args.reference_events // 2 if kase.installs == 1 else args.reference_events // 6
    url = args.postgres_url if kase.backend == "postgres" else None
    return await reference_batch.run(url, max(events, 500), kase.installs)


def combined(first: reference_batch.Result, second: reference_batch.Result) -> reference_batch.Result:
    return reference_batch.Result(first.events + second.events, first.seconds + second.seconds, first.installs)


# --- reporting --------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {host.python_version()}, SQLite {sqlite3.sqlite_version}, load {load}"
    )


def claims_line(claims: Counter[int]) -> str:
    if not claims:
        return "no claims seen"
    count = sum(claims.values())
    sizes = sum(size * n for size, n in claims.items())
    return (
        f"{count} claims (claim tokens) in the measured batch, mean {sizes / count:.1f} events, largest {max(claims)}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


async def main_async(args: argparse.Namespace) -> int:
    cases = [case(name) for name in args.cases]
    print(f"event processing: {machine()}")
    if any(k.backend == "postgres" for k in cases) and (why := await pg.reachable(args.postgres_url)):
        print(f"PostgreSQL not reachable at {pg.dsn(args.postgres_url)} ({why}): its cases are skipped")
        cases = [k for k in cases if k.backend != "postgres"]
    logdir = Path(tempfile.mkdtemp(prefix="plugboard-processing-"))
    failed = False
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    refs: dict[str, list[float]] = {}
    probes: dict[str, list[str]] = {}
    for run in range(1, args.runs + 1):
        for kase in cases:
            if kase.name.endswith("-claims"):
                try:
                    line, held = await run_probe(kase, args, logdir)
                except Exception as exc:
                    line, held = f"FAILED: {type(exc).__name__}: {exc}", False
                print(f"  {kase.name:9} run {run}: {line}")
                probes.setdefault(kase.name, []).append(line)
                failed = failed or not held
                continue
            reference = await run_reference(kase, args) if kase.workers == 1 else None
            try:
                result = await run_case(kase, args, logdir)
            except Exception as exc:
                print(f"  {kase.name:9} run {run}: FAILED: {exc}")
                failed = True
                continue
            if reference is not None:
                reference = combined(reference, await run_reference(kase, args))
            rates.setdefault(kase.name, []).append(result.rate)
            line = (
                f"  {kase.name:9} run {run}: {result.rate:9,.1f} events/s ({result.events} events in "
                f"{result.seconds:.2f} s; CPU an event: workers {result.cpu_per_event * 1e6:.0f} µs"
                + (f", database {result.database_cpu_per_event * 1e6:.0f} µs)" if kase.backend == "postgres" else ")")
            )
            if reference is not None:
                refs.setdefault(kase.name, []).append(reference.rate)
                ratios.setdefault(kase.name, []).append(result.rate / reference.rate)
                line += f"; reference {reference.rate:9,.0f} events/s; ratio {result.rate / reference.rate:.3f}"
            print(line)
            print(f"  {'':9}        {claims_line(result.claims)}; {result.reclaimed} events claimed more than once")
            firsts = ", ".join(f"{seconds:.2f} s" for seconds in result.first_batches)
            print(
                f"  {'':9}        a fresh worker's first {WARM_UP} events (warm-up, not measured), claimed to done: {firsts}"
            )
            if result.problems:
                failed = True
                for problem in result.problems:
                    print(f"  {'':9}        EXACTLY-ONCE CHECK FAILED: {problem}")
            else:
                print(
                    f"  {'':9}        checked: all {result.total} events done, one run record per install "
                    "and event, counters and execution_count equal to the messages"
                )
            for log_line in result.log_lines[: args.log_lines]:
                print(f"  {'':9}        worker log: {log_line[:300]}")
            if len(result.log_lines) > args.log_lines:
                print(f"  {'':9}        worker log: … {len(result.log_lines) - args.log_lines} more lines in {logdir}")
    print(f"event processing, medians of {args.runs} run{'s' if args.runs > 1 else ''}:")
    for kase in cases:
        if kase.name in probes:
            print(f"  {kase.backend + ', claims':40} see the runs above (target: none got less than asked)")
        if kase.name not in rates:
            continue
        rate = median(rates[kase.name])
        if kase.name in ratios:
            ratio = median(ratios[kase.name])
            target = TARGETS[kase.name]
            print(
                f"  {kase.describe():40} {rate:9,.1f} events/s, reference {median(refs[kase.name]):9,.0f}: "
                f"ratio {ratio:.3f} (target >= {target}: {'met' if ratio >= target else 'NOT MET'})"
            )
            if kase.name in RATIO_LABELS:
                report(RATIO_LABELS[kase.name], ratio, f"≥ {target}")
        else:
            single = rates.get(kase.name.replace("-2w", ""))
            scale = (
                f", {rate / median(single):.2f}x one worker (target >= {SCALE_TARGET}: "
                f"{'met' if rate / median(single) >= SCALE_TARGET else 'NOT MET'})"
                if single
                else ""
            )
            print(f"  {kase.describe():40} {rate:9,.1f} events/s{scale}")
    if failed or args.keep:
        print(f"worker logs{' and SQLite files' if args.keep else ''}: {logdir}")
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        default=list(CASES),
        help=f"comma-separated, of {', '.join(KNOWN_CASES)} (default: {','.join(CASES)})",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of every case, interleaved; medians are printed")
    parser.add_argument("--seconds", type=float, default=5.0, help="about how long the measured batch lasts")
    parser.add_argument("--concurrency", type=int, help="INBOX_CONCURRENCY of the workers (default: the app's)")
    parser.add_argument("--max-events", type=int, default=100_000, help="the largest measured batch")
    parser.add_argument(
        "--reference-events",
        type=int,
        default=20_000,
        help="events of the reference, half before the product and half after (a third with 10 installs)",
    )
    parser.add_argument(
        "--postgres-url", default=pg.DEFAULT_SERVER, help="the PostgreSQL server (scratch databases are made there)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases, SQLite files and worker logs")
    parser.add_argument("--log-lines", type=int, default=5, help="worker log lines shown per run")
    args = parser.parse_args()
    unknown = [c for c in args.cases if c not in KNOWN_CASES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; known: {', '.join(KNOWN_CASES)}")
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
