"""The database under several server processes: no request fails on a lock that clears."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.models import Plan
from app.accounts.service import AccountService
from app.db import Database
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.models import Plugin
from tests.support.databases import drop_database, new_database_url
from tests.support.serve_process import ServeProcess, WorkerProcess

MIGRATIONS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "migrations").glob("0*.py"))

INSTALL = "mutation($id: ID!) { installPlugin(pluginId: $id) { id } }"
UNINSTALL = "mutation($id: ID!) { uninstallPlugin(pluginId: $id) }"
CONFIGURE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { id } }"
TOGGLE = "mutation($id: ID!, $on: Boolean!) { togglePlugin(pluginId: $id, enabled: $on) { isEnabled } }"
PLUGINS = "{ plugins { id slug } }"
MINE = "{ myPlugins { plugin { slug } } }"
# Start-up races are met by chance: STARTUP_ROUNDS=20 starts the four processes together that many
# times, each on a new database (a soak before a release); the suite does it once per backend.
STARTUP_ROUNDS = int(os.environ.get("STARTUP_ROUNDS", "1"))


async def make_users(database_url: str, plan: Plan, count: int, prefix: str) -> list[str]:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            return [(await AccountService().create_user(f"{prefix}{n}@example.com", plan))[1] for n in range(count)]
    finally:
        await db.close()


class Client:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token
        self.errors: list[dict[str, Any]] = []

    async def call(self, query: str, **variables: Any) -> dict[str, Any] | None:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code < 500, response.text
        body = response.json()
        self.errors.extend(body.get("errors") or [])
        return body.get("data")


async def churn(client: Client, plugin_id: str, rounds: int) -> None:
    """Writes of every kind, one after another: each is a write transaction on the shared database."""
    for n in range(rounds):
        await client.call(INSTALL, id=plugin_id)
        await client.call(CONFIGURE, id=plugin_id, config={"message": f"Hello {n}", "chats": [n]})
        await client.call(TOGGLE, id=plugin_id, on=False)
        await client.call(TOGGLE, id=plugin_id, on=True)
        await client.call(UNINSTALL, id=plugin_id)


@pytest.mark.slow
async def test_four_server_processes_write_in_parallel_without_a_lock_error(database_url, telegram):
    pro_tokens = await make_users(database_url, Plan.PRO, 16, "churn")
    free_tokens = await make_users(database_url, Plan.FREE, 16, "race")
    env = {
        "DATABASE_URL": database_url,
        "TELEGRAM_API_URL": telegram.url,
        "PUBLIC_URL": "https://plugboard.example",
        "SCHEDULER_ENABLED": "false",
        "INBOX_POLL_SECONDS": "0.2",
        "ACCESS_LOG": "false",
    }
    async with ServeProcess(env, "--workers", "4") as server:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
            catalog = (await http.post("/graphql", json={"query": PLUGINS})).json()["data"]["plugins"]
            ids = {p["slug"]: p["id"] for p in catalog}
            churners = [Client(http, token) for token in pro_tokens]
            racers = [Client(http, token) for token in free_tokens]
            await asyncio.gather(
                *(churn(client, ids["welcome"], 5) for client in churners),
                # Free users install two plugins at once: the plan allows one.
                *(client.call(INSTALL, id=ids[slug]) for client in racers for slug in ("analytics", "welcome")),
            )
            kept = [await client.call(MINE) for client in racers]
        log = await server.stop()

    errors = [e for client in [*churners, *racers] for e in client.errors]
    codes = sorted({e["extensions"]["code"] for e in errors})
    assert "INTERNAL_SERVER_ERROR" not in codes, (errors, log[-3000:])
    assert codes in ([], ["PLAN_LIMIT_REACHED"])
    assert [len(data["myPlugins"]) for data in kept if data] == [1] * len(racers)
    assert sum(1 for e in errors if e["extensions"]["code"] == "PLAN_LIMIT_REACHED") == len(racers)
    assert "database is locked" not in log


async def catalog_and_migrations(database_url: str) -> tuple[list[str], list[str]]:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            slugs = await Plugin.all().order_by("slug").values_list("slug", flat=True)
        return [str(slug) for slug in slugs], await db.applied_migrations()
    finally:
        await db.close()


@pytest.mark.slow
async def test_servers_and_a_worker_started_together_on_an_empty_database_all_come_up(backend, telegram, tmp_path):
    """Three `serve` and one `worker` at the same instant, on a database with no tables yet: one
    process migrates and syncs the catalog while the others wait for it, then find nothing to do."""
    builtin = sorted(handler.definition.slug for handler in BUILTIN_HANDLERS)
    for round_ in range(STARTUP_ROUNDS):
        database_url = await new_database_url(backend, tmp_path)
        env = {
            "DATABASE_URL": database_url,
            "TELEGRAM_API_URL": telegram.url,
            "PUBLIC_URL": "https://plugboard.example",
            "INBOX_POLL_SECONDS": "0.2",
            "ACCESS_LOG": "false",
        }
        servers = [ServeProcess(env) for _ in range(3)]
        worker = WorkerProcess(env)
        try:
            started = await asyncio.gather(
                *(server.start(deadline_seconds=180) for server in servers), worker.start(), return_exceptions=True
            )
            logs = [await process.stop() for process in (*servers, worker)]
            failed = [
                (result, log) for result, log in zip(started, logs, strict=True) if isinstance(result, BaseException)
            ]
            assert not failed, f"round {round_}: {failed}"
            for log in logs:
                assert " ERROR " not in log and "Traceback" not in log, f"round {round_}: {log}"
            assert await catalog_and_migrations(database_url) == (builtin, MIGRATIONS), f"round {round_}"
        finally:
            for process in (*servers, worker):
                await process.stop()
            await drop_database(backend, database_url)
