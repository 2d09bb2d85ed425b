"""Install-scoped storage: JSON values, buffered writes, and increments that add up under concurrency."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from app.plugins.storage import InstallStorage
from tests.support.plugins import RecordingPlugin
from tests.support.runtime import install


@pytest.fixture
async def live(make_app):
    return await make_app(handlers=[RecordingPlugin(), RecordingPlugin("other")], inbox_concurrency=0)


@pytest.fixture
async def install_id(live) -> str:
    owner = await live.create_user("store@example.com", "pro")
    return (await install(live, owner, "recorder")).id


async def committed(live, install_id: str, **writes) -> None:
    with live.db():
        storage = InstallStorage(install_id)
        for key, value in writes.items():
            await storage.set(key, value)
        await storage.commit()


async def read(live, install_id: str, *keys: str) -> dict:
    with live.db():
        return await InstallStorage(install_id).get_many(keys)


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None]}, ["x", True], "text", 42, 1.5, False])
async def test_json_values_round_trip(live, install_id, value):
    await committed(live, install_id, k=value)
    assert await read(live, install_id, "k") == {"k": value}


async def test_writes_show_within_the_run_and_land_only_on_commit(live, install_id):
    with live.db():
        storage = InstallStorage(install_id)
        await storage.set("a", 1)
        await storage.increment("n", 2)
        await storage.increment("n", 3)
        assert await storage.get_many(["a", "n", "missing"], default="-") == {"a": 1, "n": 5, "missing": "-"}
        assert await InstallStorage(install_id).get("a") is None  # not committed yet
        await storage.commit()
    assert await read(live, install_id, "a", "n") == {"a": 1, "n": 5}


async def test_set_replaces_and_delete_removes(live, install_id):
    await committed(live, install_id, a=1, b=2)
    with live.db():
        storage = InstallStorage(install_id)
        await storage.set("a", "one")
        await storage.delete("b")
        assert await storage.get("b") is None
        await storage.commit()
    assert await read(live, install_id, "a", "b") == {"a": "one", "b": None}


async def test_increment_adds_to_a_stored_number(live, install_id):
    await committed(live, install_id, n=10)
    with live.db():
        storage = InstallStorage(install_id)
        await storage.increment("n", 5)
        await storage.increment("fresh")
        await storage.commit()
    assert await read(live, install_id, "n", "fresh") == {"n": 15, "fresh": 1}


async def test_concurrent_increments_add_up_exactly(live, install_id):
    async def one_run(n: int) -> None:
        with live.db():
            storage = InstallStorage(install_id)
            await storage.increment("hits")
            await storage.increment(f"bucket:{n % 3}", 2)
            await storage.commit()

    await asyncio.gather(*(one_run(n) for n in range(20)))
    assert await read(live, install_id, "hits", "bucket:0", "bucket:1", "bucket:2") == {
        "hits": 20,
        "bucket:0": 14,
        "bucket:1": 14,
        "bucket:2": 12,
    }


async def test_each_install_has_its_own_keys(live, install_id):
    owner = await live.create_user("second@example.com", "pro")
    other_id = (await install(live, owner, "other")).id
    await committed(live, install_id, shared="mine")
    await committed(live, other_id, shared="theirs")
    assert await read(live, install_id, "shared") == {"shared": "mine"}
    assert await read(live, other_id, "shared") == {"shared": "theirs"}


async def test_writes_roll_back_with_the_runs_transaction(live, install_id):
    with live.db():
        storage = InstallStorage(install_id)
        await storage.set("a", 1)
        await storage.increment("n")
        with pytest.raises(RuntimeError):
            async with in_transaction():
                await storage.flush()
                raise RuntimeError("the run's record could not be written")
    assert await read(live, install_id, "a", "n") == {"a": None, "n": None}


class ReadModifyWrite(RecordingPlugin):
    """Counts and lists a chat's messages the naive way: read, change, write back."""

    async def on_event(self, event, ctx):
        counted = await ctx.storage.get_many(["n", "order"])
        await ctx.storage.set("n", (counted["n"] or 0) + 1)
        await ctx.storage.set("order", [*(counted["order"] or []), event.update_id])
        if event.message.text == "fail":
            raise RuntimeError("this run fails, and its writes with it")


async def test_runs_recorded_together_see_each_others_writes_in_chat_order(make_app, telegram):
    from tests.support.runtime import connect_bot, deliver, stored, wait_until_processed
    from tests.support.telegram_updates import message_update

    live = await make_app(handlers=[ReadModifyWrite("rmw")])
    owner = await live.create_user("rmw@example.com", "pro")
    bot = await connect_bot(live, owner, telegram)
    installed = await install(live, owner, "rmw")
    # Stored while no dispatcher runs, so that one claim takes them all and one lane runs them
    # back to back, recorded in one commit: each run must see the writes of those before it.
    await live.platform.dispatcher.stop()
    texts = ["ok"] * 30 + ["fail"] + ["ok"] * 19
    for n, text in enumerate(texts, start=1):
        assert (await deliver(live, bot, message_update(n, text=text))).status_code == 200
    with live.db():
        live.platform.dispatcher.start()
    await wait_until_processed(live)
    succeeded = [n for n, text in enumerate(texts, start=1) if text == "ok"]
    assert await stored(live, installed.id, "n") == len(succeeded)
    assert await stored(live, installed.id, "order") == succeeded
