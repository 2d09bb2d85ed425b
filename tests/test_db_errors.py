"""Reading real database errors: a row refused for what it holds, or a database unavailable."""

from __future__ import annotations

import socket
import sqlite3

import asyncpg
import pytest
from tortoise.exceptions import DBConnectionError

from app.db import Database
from app.db_errors import (
    describe,
    is_database_unavailable,
    is_unavailable,
    refusal,
    safe_text,
    said_as_database_failure,
)

MARKER = "a-value-of-the-row"


async def error_of(database_url: str, sql: str, params: list) -> Exception:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound() as ctx:
            await ctx.db().execute_query(sql, params)
    except Exception as exc:
        return exc
    finally:
        await db.close()
    raise AssertionError("the database took it")


@pytest.mark.parametrize(
    ("column", "value", "refused_on"),
    [
        ("chat_id", 2**70, {"sqlite", "postgres"}),
        ("key", f"{MARKER}\ud800", {"sqlite", "postgres"}),
        ("key", f"{MARKER}\x00", {"postgres"}),
        ("payload", '{"v":"%s\\u0000"}' % MARKER, {"postgres"}),
    ],
    ids=["int-2**70", "lone-surrogate", "nul", "nul-in-jsonb"],
)
async def test_a_value_the_database_refuses_is_a_refusal_naming_no_value(
    backend, database_url, column, value, refused_on
):
    if backend not in refused_on:
        pytest.skip(f"{backend} takes it")
    placeholder = "?" if backend == "sqlite" else "$1::jsonb" if column == "payload" else "$1"
    exc = await error_of(database_url, f"SELECT id FROM gateway_events WHERE {column} = {placeholder}", [value])
    reason = refusal(exc)
    assert reason is not None, repr(exc)
    assert MARKER not in reason and MARKER not in describe(exc)
    assert reason.isascii() and reason.isprintable()
    assert not is_unavailable(exc)


async def test_a_database_that_is_not_there_is_unavailable_not_a_refusal():
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Exception) as caught:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/x", timeout=5)
    assert is_unavailable(caught.value)
    assert refusal(caught.value) is None


async def test_a_locked_sqlite_database_is_unavailable(tmp_path):
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (v INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        waiter = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("INSERT INTO t VALUES (1)")
        waiter.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert is_unavailable(caught.value)
    assert refusal(caught.value) is None


def test_safe_text_is_printable_ascii_and_bounded():
    assert safe_text("a\x00b\ud800c\u00e9\n") == "a\\x00b\\ud800c\\xe9\\x0a"
    assert len(safe_text("x" * 1_000)) == 200


def test_only_the_database_layer_makes_a_database_outage():
    from tortoise.exceptions import DBConnectionError

    from app.db_errors import is_database_unavailable

    def raised(make):
        try:
            make()
        except Exception as exc:
            return exc
        raise AssertionError("nothing raised")

    def plugin_network_failure():
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError:
            raise RuntimeError("the webhook could not be reached") from None

    def database_refused():
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise DBConnectionError("cannot connect") from exc

    assert not is_database_unavailable(raised(plugin_network_failure))  # a plugin's own failure
    assert not is_database_unavailable(TimeoutError())
    assert is_database_unavailable(raised(database_refused))


async def test_a_pool_that_cannot_connect_is_said_as_the_database_failing_not_as_anyones_network():
    # asyncpg's pool raises a bare ConnectionError when it cannot open a connection: alone, it
    # reads like a plugin's own network failure, so a run would be recorded as failed, not rerun.
    bare = ConnectionError("unexpected connection_lost() call")
    assert not is_database_unavailable(bare)
    with pytest.raises(DBConnectionError) as raised:
        async with said_as_database_failure("send limits unreadable"):
            raise bare
    assert is_database_unavailable(raised.value)
    assert str(raised.value).startswith("send limits unreadable: ")


async def test_what_is_not_the_database_being_away_passes_through_unchanged():
    with pytest.raises(ValueError, match="a bug"):
        async with said_as_database_failure("gateway lookup"):
            raise ValueError("a bug")
