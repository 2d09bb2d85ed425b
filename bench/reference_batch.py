"""The reference for event processing: a minimal batch processor doing the durable work that
exactly-once processing needs, straight on the driver (asyncpg or aiosqlite), in its own tables.

Per batch of `batch` events, in one transaction on one connection:
1. claim: `UPDATE inbox SET status = 'processing' WHERE id IN (SELECT … pending … LIMIT n
   [FOR UPDATE SKIP LOCKED]) RETURNING …`;
2. parse each event's JSON (the chat it belongs to);
3. one multi-row insert of the run records, one per install and event, `ON CONFLICT DO
   NOTHING RETURNING` (the unique key keeps a replay from counting twice);
4. one multi-row upsert of the counters of the runs that were inserted: with one install, one
   counter per chat (like analytics' chat totals); with several, one counter per install (like a
   plugin's `ctx.storage.increment`);
5. the events marked done in one statement.

    .venv/bin/python -m bench.reference_batch [--database-url URL] [--events 20000] [--installs 1]

Without --database-url it runs on a temporary SQLite file; a PostgreSQL URL names a scratch
database that is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import asyncpg

from bench import pg
from bench.updates import chat_id, update_json

BATCH = 128
CHATS = 100
SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000")  # as the product's SQLite


@dataclass(frozen=True)
class Result:
    events: int
    seconds: float
    installs: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _installs(count: int) -> list[str]:
    return [f"install-{i}" for i in range(count)]


def _counters(
    rows: list[tuple[int, str, str]], inserted: list[tuple[str, str]], installs: int
) -> Counter[tuple[str, str]]:
    """What the runs that were inserted add: per chat (one install) or per install (several)."""
    chats = {key: chat for _, key, chat in rows}
    counts: Counter[tuple[str, str]] = Counter()
    for install, key in inserted:
        counts[(install, chats[key] if installs == 1 else "messages")] += 1
    return counts


def _parse(claimed: list[Any]) -> list[tuple[int, str, str]]:
    rows = []
    for row in claimed:
        update = json.loads(row[2])
        rows.append((row[0], row[1], str(update["message"]["chat"]["id"])))
    rows.sort()
    return rows


# --- PostgreSQL ------------------------------------------------------------------------------

PG_SCHEMA = """
CREATE TABLE ref_inbox (
    id bigserial PRIMARY KEY, chat_id bigint, key text NOT NULL UNIQUE, payload jsonb NOT NULL,
    status text NOT NULL, attempts int NOT NULL DEFAULT 0, claim text, processed_at timestamptz);
CREATE INDEX ref_inbox_status ON ref_inbox (status, id);
CREATE TABLE ref_counters (install_id text, key text, value bigint NOT NULL, PRIMARY KEY (install_id, key));
CREATE TABLE ref_runs (
    id bigserial PRIMARY KEY, install_id text NOT NULL, event_key text NOT NULL, success boolean NOT NULL,
    created_at timestamptz NOT NULL, UNIQUE (install_id, event_key));
"""

PG_CLAIM = """
UPDATE ref_inbox SET status = 'processing', attempts = attempts + 1, claim = $2
WHERE id IN (SELECT id FROM ref_inbox WHERE status = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, key, payload::text
"""
PG_RUNS = """
INSERT INTO ref_runs (install_id, event_key, success, created_at)
SELECT i, k, true, now() FROM unnest($1::text[], $2::text[]) AS t(i, k)
ON CONFLICT (install_id, event_key) DO NOTHING RETURNING install_id, event_key
"""
PG_COUNTERS = """
INSERT INTO ref_counters (install_id, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT (install_id, key) DO UPDATE SET value = ref_counters.value + excluded.value
"""
PG_DONE = "UPDATE ref_inbox SET status = 'done', processed_at = now() WHERE id = ANY($1::bigint[]) AND claim = $2"


async def _pg_batch(conn: asyncpg.Connection, installs: list[str], batch: int) -> int:
    token = uuid.uuid4().hex
    async with conn.transaction():
        rows = _parse(await conn.fetch(PG_CLAIM, batch, token))
        if not rows:
            return 0
        keys = [key for _, key, _ in rows]
        inserted = await conn.fetch(PG_RUNS, [i for i in installs for _ in keys], keys * len(installs))
        counts = _counters(rows, [(r[0], r[1]) for r in inserted], len(installs))
        if counts:
            await conn.execute(PG_COUNTERS, [i for i, _ in counts], [k for _, k in counts], list(counts.values()))
        await conn.execute(PG_DONE, [id_ for id_, _, _ in rows], token)
    return len(rows)


async def run_postgres(url: str, events: int, installs: int = 1, batch: int = BATCH, chats: int = CHATS) -> Result:
    """Fills a scratch database's inbox with `events` updates, then processes them; drops it after."""
    async with pg.scratch_database(url) as scratch:
        conn = await asyncpg.connect(pg.dsn(scratch))
        try:
            await conn.execute(PG_SCHEMA)
            date = int(time.time())
            await conn.copy_records_to_table(
                "ref_inbox",
                records=[
                    (chat_id(n, chats), str(n), update_json(n, chats, date), "pending") for n in range(1, events + 1)
                ],
                columns=["chat_id", "key", "payload", "status"],
            )
            names = _installs(installs)
            started = time.perf_counter()
            while await _pg_batch(conn, names, batch):
                pass
            seconds = time.perf_counter() - started
            await _check(
                events,
                installs,
                await conn.fetchval("SELECT count(*) FROM ref_inbox WHERE status = 'done'"),
                await conn.fetchval("SELECT count(*) FROM ref_runs"),
                await conn.fetchval("SELECT sum(value) FROM ref_counters"),
            )
        finally:
            await conn.close()
    return Result(events, seconds, installs)


# --- SQLite ----------------------------------------------------------------------------------

SQLITE_SCHEMA = """
CREATE TABLE ref_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER, key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, claim TEXT, processed_at TEXT);
CREATE INDEX ref_inbox_status ON ref_inbox (status, id);
CREATE TABLE ref_counters (install_id TEXT, key TEXT, value INTEGER NOT NULL, PRIMARY KEY (install_id, key));
CREATE TABLE ref_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, install_id TEXT NOT NULL, event_key TEXT NOT NULL, success INTEGER NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (install_id, event_key));
"""

SQLITE_CLAIM = """
UPDATE ref_inbox SET status = 'processing', attempts = attempts + 1, claim = ?
WHERE id IN (SELECT id FROM ref_inbox WHERE status = 'pending' ORDER BY id LIMIT ?)
RETURNING id, key, payload
"""


def _values(rows: int, columns: int) -> str:
    one = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([one] * rows)


async def _sqlite_batch(conn: aiosqlite.Connection, installs: list[str], batch: int) -> int:
    token = uuid.uuid4().hex
    await conn.execute("BEGIN IMMEDIATE")
    try:
        async with conn.execute(SQLITE_CLAIM, (token, batch)) as cursor:
            rows = _parse(list(await cursor.fetchall()))
        if not rows:
            await conn.rollback()
            return 0
        now = datetime.now(UTC).isoformat()
        params = [v for install in installs for _, key, _ in rows for v in (install, key, 1, now)]
        async with conn.execute(
            f"INSERT INTO ref_runs (install_id, event_key, success, created_at) VALUES {_values(len(params) // 4, 4)} "
            "ON CONFLICT (install_id, event_key) DO NOTHING RETURNING install_id, event_key",
            params,
        ) as cursor:
            inserted = [(r[0], r[1]) for r in await cursor.fetchall()]
        counts = _counters(rows, inserted, len(installs))
        if counts:
            await conn.execute(
                f"INSERT INTO ref_counters (install_id, key, value) VALUES {_values(len(counts), 3)} "
                "ON CONFLICT (install_id, key) DO UPDATE SET value = ref_counters.value + excluded.value",
                [v for (install, key), n in counts.items() for v in (install, key, n)],
            )
        ids = [id_ for id_, _, _ in rows]
        await conn.execute(
            f"UPDATE ref_inbox SET status = 'done', processed_at = ? WHERE claim = ? AND id IN ({', '.join('?' * len(ids))})",
            [now, token, *ids],
        )
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
    return len(rows)


async def run_sqlite(path: str, events: int, installs: int = 1, batch: int = BATCH, chats: int = CHATS) -> Result:
    """Fills a new SQLite file's inbox with `events` updates, then processes them."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in SQLITE_PRAGMAS:
            await conn.execute(f"PRAGMA {pragma}")
        await conn.executescript(SQLITE_SCHEMA)
        date = int(time.time())
        await conn.execute("BEGIN")
        await conn.executemany(
            "INSERT INTO ref_inbox (chat_id, key, payload, status) VALUES (?, ?, ?, 'pending')",
            [(chat_id(n, chats), str(n), update_json(n, chats, date)) for n in range(1, events + 1)],
        )
        await conn.commit()
        names = _installs(installs)
        started = time.perf_counter()
        while await _sqlite_batch(conn, names, batch):
            pass
        seconds = time.perf_counter() - started

        async def value(query: str) -> int:
            async with conn.execute(query) as cursor:
                row = await cursor.fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        await _check(
            events,
            installs,
            await value("SELECT count(*) FROM ref_inbox WHERE status = 'done'"),
            await value("SELECT count(*) FROM ref_runs"),
            await value("SELECT sum(value) FROM ref_counters"),
        )
    finally:
        await conn.close()
    return Result(events, seconds, installs)


async def _check(events: int, installs: int, done: int, runs: int, counted: int) -> None:
    if (done, runs, counted) != (events, events * installs, events * installs):
        raise SystemExit(
            f"reference check failed: {done} done, {runs} runs, counters {counted}; "
            f"expected {events}, {events * installs}, {events * installs}"
        )


async def run(database_url: str | None, events: int, installs: int = 1, batch: int = BATCH) -> Result:
    """On `database_url` (a PostgreSQL server whose scratch database it makes), else on a temporary SQLite file."""
    if database_url and pg.is_postgres(database_url):
        return await run_postgres(database_url, events, installs, batch)
    with tempfile.TemporaryDirectory(prefix="plugboard-ref-") as workdir:
        return await run_sqlite(os.path.join(workdir, "reference.sqlite3"), events, installs, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="postgres://… (a scratch database is made on that server); default: SQLite"
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--installs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    result = asyncio.run(run(args.database_url, args.events, args.installs, args.batch))
    backend = "postgres" if args.database_url and pg.is_postgres(args.database_url) else "sqlite"
    print(
        f"reference ({backend}, {args.installs} installs, batches of {args.batch}): "
        f"{result.rate:,.0f} events/s ({result.events} events in {result.seconds:.2f} s)"
    )


if __name__ == "__main__":
    main()
