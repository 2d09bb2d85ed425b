"""Migration 0004 (token names, expiry, revocation, last use): tokens made before it keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from app.accounts.models import ApiToken
from app.accounts.tokens import TokenService, hash_token, new_token
from app.db import APP_LABEL, Database
from tests.support.databases import drop_database, new_database_url


@pytest.fixture
async def at_0003(backend: str, tmp_path) -> AsyncIterator[Database]:
    """A new database migrated up to 0003_analytics, the state before API token management."""
    url = await new_database_url(backend, tmp_path)
    db = Database(url)
    await db.open()
    with db.bound() as ctx:
        await MigrationExecutor(ctx.db(), db.config["apps"]).migrate([MigrationTarget(APP_LABEL, "0003_analytics")])
    yield db
    await db.close()
    await drop_database(backend, url)


async def test_a_token_made_before_0004_still_authenticates_after_it(at_0003, backend):
    token = new_token()
    placeholders = ["$1", "$2", "$3"] if backend == "postgres" else ["?", "?", "?"]
    with at_0003.bound() as ctx:
        connection = ctx.db()
        await connection.execute_query(
            f"INSERT INTO users (id, email, plan, created_at) VALUES ({', '.join(placeholders)}, CURRENT_TIMESTAMP)",
            ["0123456789abcdef0123456789abcdef", "old@example.com", "pro"],
        )
        await connection.execute_query(
            f"INSERT INTO api_tokens (id, user_id, token_hash, created_at) VALUES ({', '.join(placeholders)}, CURRENT_TIMESTAMP)",
            ["fedcba9876543210fedcba9876543210", "0123456789abcdef0123456789abcdef", hash_token(token)],
        )
    applied = await at_0003.migrate()  # 0004, then every later migration
    assert applied[0] == "0004_api_tokens"
    with at_0003.bound():
        ctx = await TokenService().authenticate(token)
        assert ctx is not None and ctx.user_id == "0123456789abcdef0123456789abcdef"
        row = await ApiToken.get(id="fedcba9876543210fedcba9876543210")
        assert (row.name, row.expires_at, row.revoked_at) == ("", None, None)
        assert row.last_used_at is not None
