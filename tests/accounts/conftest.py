from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.db import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test database, open and current for ORM calls."""
    database = Database(database_url)
    await database.open()
    try:
        with database.bound():
            yield database
    finally:
        await database.close()
