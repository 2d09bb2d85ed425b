"""Leases (app/gateways/leases.py): one holder at a time, renewals, release and expiry, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.db import Database
from app.gateways import leases
from app.gateways.models import Lease
from tests.support.eventually import eventually


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.open()
    try:
        with database.bound():
            yield database
    finally:
        await database.close()


async def test_one_holder_at_a_time_and_renewals_keep_it(db):
    assert await leases.take("work", "a", 30)
    assert not await leases.take("work", "b", 30)
    assert await leases.take("work", "a", 30)  # a renewal
    assert await leases.holder_of("work") == "a"
    assert await leases.take("other", "b", 30)  # another lease is another row


async def test_a_released_lease_is_taken_at_once_and_release_by_another_does_nothing(db):
    assert await leases.take("work", "a", 30)
    await leases.release("work", "b")
    assert await leases.holder_of("work") == "a"
    await leases.release("work", "a")
    assert await leases.holder_of("work") is None
    assert await leases.take("work", "b", 30)


async def test_an_expired_lease_is_taken_over(db):
    assert await leases.take("work", "a", 0.05)
    await eventually(lambda: leases.take("work", "b", 30), "the lease taken over once it ran out")
    assert not await leases.take("work", "a", 30)
    assert (await Lease.get(name="work")).holder == "b"


async def test_holders_lists_the_live_leases_under_a_prefix(db):
    assert await leases.take("poll:a", "one", 30)
    assert await leases.take("poll:b", "two", 30)
    assert await leases.take("poll:gone", "two", 0.05)
    assert await leases.take("gateway-health", "one", 30)

    async def gone_ran_out() -> bool:
        return "poll:gone" not in await leases.holders("poll:")

    await eventually(gone_ran_out, "the short lease running out")
    assert await leases.holders("poll:") == {"poll:a": "one", "poll:b": "two"}
    await leases.release("poll:a", "one")
    assert await leases.holders("poll:") == {"poll:b": "two"}
