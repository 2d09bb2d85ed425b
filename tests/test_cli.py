"""python -m app: the verbs a newcomer and an operator use."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from app.accounts.models import ApiToken, User
from app.accounts.service import authenticate, hash_token
from app.db import Database


async def run_cli(*args: str, database_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_user_prints_a_token_that_authenticates_and_stores_only_its_hash(database_url):
    code, out, _ = await run_cli("create-user", "Ada@Example.com", "--plan", "pro", database_url=database_url)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("pb_")

    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            user = await User.get(email="ada@example.com")
            assert user.plan.value == "pro"
            stored = await ApiToken.filter(user_id=user.id).values_list("token_hash", flat=True)
            assert stored == [hash_token(token)]
            assert token not in stored
            ctx = await authenticate(token)
            assert ctx is not None and ctx.user_id == user.id
            assert await authenticate(token + "x") is None
    finally:
        await db.close()


async def test_create_user_refuses_a_taken_email(database_url):
    assert (await run_cli("create-user", "dup@example.com", database_url=database_url))[0] == 0
    code, out, err = await run_cli("create-user", "dup@example.com", database_url=database_url)
    assert code == 1
    assert "already" in err
    assert "pb_" not in out


async def test_create_user_refuses_an_unknown_plan(database_url):
    code, _, err = await run_cli("create-user", "x@example.com", "--plan", "platinum", database_url=database_url)
    assert code == 2
    assert "invalid choice" in err


async def test_migrate_is_idempotent(database_url):
    assert (await run_cli("migrate", database_url=database_url))[0] == 0
    assert (await run_cli("migrate", database_url=database_url))[0] == 0


async def test_makemigrations_finds_nothing_to_write(database_url):
    code, out, _ = await run_cli("makemigrations", database_url=database_url)
    assert code == 0
    assert "No changes detected" in out


async def test_healthz_answers_200_while_the_database_answers(app):
    assert app.http is not None
    response = await app.http.get("/healthz")
    assert response.status_code == 200


async def test_healthz_answers_503_when_the_database_is_gone(backend, make_app):
    if backend != "postgres":
        pytest.skip("a SQLite file cannot be taken away from an open connection")
    from tests.support.databases import create_postgres_database, drop_postgres_database, migrated

    url = await create_postgres_database()
    await migrated(url)
    live = await make_app(database_url=url)
    assert live.http is not None
    assert (await live.http.get("/healthz")).status_code == 200
    await drop_postgres_database(url)
    assert (await live.http.get("/healthz")).status_code == 503


@pytest.mark.parametrize(
    ("public_url", "warned"),
    [("http://127.0.0.1:8000", True), ("https://plugboard.example:8080", True), ("https://plugboard.example", False)],
)
async def test_serve_warns_at_start_up_when_telegram_would_refuse_public_url(database_url, backend, public_url, warned):
    if backend != "sqlite":
        pytest.skip("the warning does not depend on the database")
    from tests.support.serve_process import ServeProcess

    env = {"DATABASE_URL": database_url, "PUBLIC_URL": public_url, "SCHEDULER_ENABLED": "false"}
    async with ServeProcess(env) as server:
        log = await server.stop()
    warnings = [line for line in log.splitlines() if "WARNING" in line and "PUBLIC_URL" in line]
    if warned:
        assert len(warnings) == 1, log
        assert public_url in warnings[0] and "Set PUBLIC_URL to this server's public HTTPS address" in warnings[0]
    else:
        assert warnings == [], log
