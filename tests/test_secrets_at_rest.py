"""Secrets at rest: bot tokens, webhook secrets and writeOnly plugin settings are stored sealed
(app/secrets_at_rest.py), on SQLite and PostgreSQL: the cipher, the keys, the hostile cases (a
tampered value, a value moved between rows, a key too short, a key changed under a running
server), rotation, migration 0010 on a database filled before it, and a dump that shows no secret."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from app import secrets_at_rest as at_rest
from app.db import Database
from app.gateways.models import Gateway, GatewayStatus, token_place
from app.gateways.sealed import UNREADABLE_REASON, GatewaySecretUnreadable
from app.plugins.models import Plugin, UserPlugin
from app.plugins.sealed_config import open_config
from app.secrets_at_rest import Keyring, Place, SecretUnreadable
from app.secrets_store import rotate
from app.settings import SettingError, Settings
from tests.conftest import TEST_SECRET_KEY
from tests.support.databases import drop_database, new_database_url
from tests.support.rows import insert_raw
from tests.support.runtime import connect_bot, deliver, install, service_context
from tests.support.telegram_updates import message_update
from tests.test_cli import first_lines_of_serve, one_error_line, run_cli

SIGNING_SECRET = "forward-signing-secret-7f3a9c"
FORWARD_CONFIG = {"url": "https://hooks.example/in", "signingSecret": SIGNING_SECRET}


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    yield
    at_rest.configure([TEST_SECRET_KEY])


async def sql(app: Any, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with app.db() as ctx:
        conn = ctx.db()
        if conn.capabilities.dialect != "postgres":
            query = query.replace("$1", "?").replace("$2", "?")
        return await conn.execute_query_dict(query, params or [])


# --- the cipher ------------------------------------------------------------------------------------


def test_a_value_round_trips_and_is_bound_to_its_row_and_field():
    ring = Keyring.of([at_rest.generate_key()])
    here = Place("gateways", "a" * 32, "bot_token")
    sealed = ring.seal("123:secret-token", here)
    assert sealed.startswith(f"enc:v1:{ring.primary.key_id}:") and "secret-token" not in sealed
    assert ring.open(sealed, here) == "123:secret-token"
    assert ring.seal("123:secret-token", here) != sealed  # a fresh nonce each time
    for elsewhere in (Place("gateways", "b" * 32, "bot_token"), Place("gateways", "a" * 32, "webhook_secret")):
        with pytest.raises(SecretUnreadable) as caught:
            ring.open(sealed, elsewhere)
        assert not caught.value.unknown_key and "123:secret" not in str(caught.value)


def test_a_tampered_value_and_a_foreign_key_do_not_open():
    ring = Keyring.of([at_rest.generate_key()])
    here = Place("user_plugins", "c" * 32, "config.signingSecret")
    sealed = ring.seal("s3cret", here)
    body = bytearray(base64.urlsafe_b64decode(sealed.rsplit(":", 1)[1]))
    body[-1] ^= 1
    tampered = sealed.rsplit(":", 1)[0] + ":" + base64.urlsafe_b64encode(bytes(body)).decode()
    with pytest.raises(SecretUnreadable):
        ring.open(tampered, here)
    with pytest.raises(SecretUnreadable) as caught:
        Keyring.of([at_rest.generate_key()]).open(sealed, here)
    assert caught.value.unknown_key and "SECRET_KEY" in str(caught.value)


@pytest.mark.parametrize("key", ["short", "a" * 42, "not base64 at all, no, not at all, not at all!!", "=" * 44])
def test_a_key_too_short_or_not_base64url_is_one_setting_error_naming_secret_key(key):
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"SECRET_KEY": key})
    message = str(caught.value)
    assert "SECRET_KEY" in message and "generate-key" in message and key not in message
    with pytest.raises(SettingError, match="SECRET_KEYS"):
        Settings.from_env({"SECRET_KEYS": f"{at_rest.generate_key()},{key}"})


def test_secret_keys_the_first_seals_and_any_opens():
    new, old = at_rest.generate_key(), at_rest.generate_key()
    settings = Settings.from_env({"SECRET_KEYS": f"{new}, {old}"})
    assert settings.secret_keys == (new, old)
    before = Keyring.of([old]).seal("x", Place("t", "r", "f"))
    ring = Keyring.of(settings.secret_keys)
    assert ring.open(before, Place("t", "r", "f")) == "x"
    assert ring.sealed_by_primary(ring.seal("x", Place("t", "r", "f")))


# --- through the platform ---------------------------------------------------------------------------


async def test_a_connected_bot_and_a_signing_secret_are_stored_sealed_and_plugins_get_them_plain(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    installed = await install(app, user, "forward", dict(FORWARD_CONFIG))
    [row] = await sql(app, "SELECT bot_token, webhook_secret, bot_token_hash FROM gateways")
    assert at_rest.is_sealed(row["bot_token"]) and at_rest.is_sealed(row["webhook_secret"])
    assert bot.token not in row["bot_token"] and bot.secret not in row["webhook_secret"]
    assert row["bot_token_hash"] == at_rest.lookup_hash(bot.token)
    with app.db():
        gateway = await Gateway.get(id=bot.gateway_id)
        stored = (await UserPlugin.get(id=installed.id)).config
    assert (gateway.token, gateway.secret) == (bot.token, bot.secret)
    assert at_rest.is_sealed(stored["signingSecret"]) and stored["url"] == FORWARD_CONFIG["url"]
    ctx = app.platform.executor.context(user.id, installed.id, stored, "forward", None)
    assert ctx.config["signingSecret"] == SIGNING_SECRET


async def tamper(app: Any, column: str, gateway_id: str) -> None:
    [row] = await sql(app, f"SELECT {column} FROM gateways WHERE id = $1", [gateway_id])
    value = row[column]
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    await sql(app, f"UPDATE gateways SET {column} = $1 WHERE id = $2", [flipped, gateway_id])


async def test_a_tampered_webhook_secret_refuses_updates_and_nothing_crashes(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    await tamper(app, "webhook_secret", bot.gateway_id)
    app.platform.gateways.secrets.forget(bot.gateway_id)
    response = await deliver(app, bot, message_update(1))
    assert response.status_code == 401
    assert (await app.http.get("/healthz")).status_code == 200


async def test_a_tampered_token_shows_on_the_gateway_and_a_reconnect_repairs_it(app, user, telegram):
    bot = await connect_bot(app, user, telegram)
    await tamper(app, "bot_token", bot.gateway_id)
    ctx = await service_context(app, user)
    with app.db(), pytest.raises(GatewaySecretUnreadable) as caught:
        await app.platform.gateways.execute(user.id, bot.gateway_id, "sendMessage", {"chat_id": 1, "text": "hi"})
    assert caught.value.code == "SECRET_UNREADABLE" and bot.token not in caught.value.message
    shown = await app.graphql("{ myGateways { id status statusReason } }", user=user)
    [gateway] = shown["myGateways"]
    assert (gateway["status"], gateway["statusReason"]) == ("TOKEN_REJECTED", UNREADABLE_REASON)

    with app.db():
        again = await app.platform.gateways.connect_telegram_bot(ctx, bot.token)
        row = await Gateway.get(id=bot.gateway_id)
    assert again.id == bot.gateway_id  # brought back, its token sealed anew
    assert (row.status, row.token) == (GatewayStatus.ACTIVE, bot.token)


async def test_a_ciphertext_moved_to_another_row_does_not_open(app, user, telegram):
    first = await connect_bot(app, user, telegram, "first_bot")
    other = await app.create_user("grace@example.com", "pro")
    second = await connect_bot(app, other, telegram, "second_bot")
    [row] = await sql(app, "SELECT bot_token FROM gateways WHERE id = $1", [first.gateway_id])
    await sql(app, "UPDATE gateways SET bot_token = $1 WHERE id = $2", [row["bot_token"], second.gateway_id])
    with app.db():
        moved = await Gateway.get(id=second.gateway_id)
    with pytest.raises(SecretUnreadable) as caught:
        _ = moved.token
    assert not caught.value.unknown_key
    with pytest.raises(SecretUnreadable):
        at_rest.open_sealed(row["bot_token"], token_place(second.gateway_id))


async def test_rotation_with_two_keys_then_the_old_one_dropped(app, user, telegram, restore_keyring):
    bot = await connect_bot(app, user, telegram)
    installed = await install(app, user, "forward", dict(FORWARD_CONFIG))
    new = at_rest.generate_key()
    ring = at_rest.configure([new, TEST_SECRET_KEY])
    with app.db():
        moved = await rotate(ring, batch_size=1)
        again = await rotate(ring, batch_size=1)  # what a resumed run finds: nothing left to move
    assert (moved.gateways, moved.installs, moved.values) == (1, 1, 3)
    assert (again.values, again.gateways, again.installs) == (0, 0, 0)

    ring = at_rest.configure([new])  # the old key dropped
    with app.db():
        gateway = await Gateway.get(id=bot.gateway_id)
        stored = (await UserPlugin.get(id=installed.id)).config
        found = await Gateway.filter(bot_token_hash__in=at_rest.lookup_hashes(bot.token)).count()
    assert (gateway.token, gateway.secret) == (bot.token, bot.secret)
    assert open_config(installed.id, stored)["signingSecret"] == SIGNING_SECRET
    assert found == 1  # the lookup hash moved to the new key too
    assert all(at_rest.key_id_of(v) == ring.primary.key_id for v in (gateway.bot_token, gateway.webhook_secret))


async def test_a_key_changed_under_a_running_server(app, user, telegram, database_url):
    """Another process rotates to a new key and drops the old one while this server runs with
    the old one only: its webhook refuses (401) rather than fail, a call fails with
    SECRET_UNREADABLE, the gateway's status is left alone and no value is overwritten; a restart
    with the old key alone stops in one line naming SECRET_KEY."""
    bot = await connect_bot(app, user, telegram)
    new = at_rest.generate_key()
    code, out, err = await run_cli(
        "secrets", "rotate", database_url=database_url, env={"SECRET_KEYS": f"{new},{TEST_SECRET_KEY}"}
    )
    assert code == 0, err
    assert "Re-encrypted 2 secret values in 1 gateways" in out
    [before] = await sql(app, "SELECT bot_token, webhook_secret, status FROM gateways")

    app.platform.gateways.secrets.forget(bot.gateway_id)
    assert (await deliver(app, bot, message_update(1))).status_code == 401
    with app.db(), pytest.raises(GatewaySecretUnreadable):
        await app.platform.gateways.execute(user.id, bot.gateway_id, "sendMessage", {"chat_id": 1, "text": "hi"})
    assert await sql(app, "SELECT bot_token, webhook_secret, status FROM gateways") == [before]
    assert before["status"] == "ACTIVE"

    code, _, err = await run_cli("migrate", database_url=database_url, env={"SECRET_KEY": TEST_SECRET_KEY})
    assert code == 1
    line = one_error_line(err)
    assert "SECRET_KEY" in line and "Traceback" not in err
    assert await sql(app, "SELECT bot_token, webhook_secret, status FROM gateways") == [before]

    code, out, err = await run_cli("migrate", database_url=database_url, env={"SECRET_KEY": new})
    assert code == 0, err


# --- the command line ----------------------------------------------------------------------------------


async def test_generate_key_prints_a_key_that_settings_take():
    code, out, _ = await run_cli("secrets", "generate-key")
    assert code == 0
    key = out.strip()
    assert Settings.from_env({"SECRET_KEY": key}).secret_keys == (key,)


async def test_a_too_short_key_stops_the_cli_in_one_line(database_url):
    code, _, err = await run_cli("migrate", database_url=database_url, env={"SECRET_KEY": "tooshort"})
    assert code == 1
    assert "SECRET_KEY" in one_error_line(err) and "tooshort" not in err


async def test_postgres_without_a_key_is_refused_with_how_to_make_one(backend, database_url):
    if backend != "postgres":
        pytest.skip("SQLite has its embedded key file")
    for command in (["migrate"], ["worker"]):
        code, _, err = await run_cli(*command, database_url=database_url, env={"SECRET_KEY": "", "SECRET_KEYS": ""})
        assert code == 1
        line = one_error_line(err)
        assert "SECRET_KEY" in line and "python -m app secrets generate-key" in line


async def test_sqlite_without_a_key_generates_one_beside_the_database_with_mode_0600(tmp_path):
    url = f"sqlite://{tmp_path / 'db' / 'plugboard.sqlite3'}"
    (tmp_path / "db").mkdir()
    env = {"SECRET_KEY": "", "SECRET_KEYS": ""}
    code, _, err = await run_cli("migrate", database_url=url, env=env)
    assert code == 0, err
    key_file = tmp_path / "db" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert Settings.from_env({"DATABASE_URL": url}).secret_keys == (key,)
    code, _, err = await run_cli("migrate", database_url=url, env=env)
    assert code == 0, err
    assert key_file.read_text().strip() == key  # made once


# --- migration 0010 on a database filled before it ------------------------------------------------------


async def test_migration_0010_seals_what_a_database_at_0009_holds(backend, tmp_path):
    url = await new_database_url(backend, tmp_path)
    db = Database(url)
    await db.open()
    try:
        await db.migrate(up_to="0009_gateway_health")
        token, secret = "4242:AAplain-token-from-before-encryption", "plain-webhook-secret"
        schema = {
            "type": "object",
            "properties": {"url": {"type": "string"}, "signingSecret": {"type": "string", "writeOnly": True}},
        }
        with db.bound() as ctx:
            conn = ctx.db()
            pg = conn.capabilities.dialect == "postgres"

            now = "2026-01-01 00:00:00+00:00"
            from datetime import UTC, datetime

            stamp: Any = datetime(2026, 1, 1, tzinfo=UTC) if pg else now
            await insert_raw(
                conn, "users", {"id": "u" * 32, "email": "old@example.com", "plan": "pro", "created_at": stamp}
            )
            for n in range(3):
                await insert_raw(
                    conn,
                    "gateways",
                    {
                        "id": f"{n}" * 32,
                        "owner_id": "u" * 32,
                        "type": "TELEGRAM_BOT",
                        "name": f"old {n}",
                        "bot_token": f"{token}{n}",
                        "webhook_secret": f"{secret}{n}",
                        "bot_id": 4242 + n,
                        "created_at": stamp,
                        "updated_at": stamp,
                    },
                )
            await insert_raw(
                conn,
                "plugins",
                {
                    "id": "p" * 32,
                    "slug": "forward",
                    "name": "Forward",
                    "description": "",
                    "required_gateways": "[]",
                    "config_schema": json.dumps(schema),
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
            await insert_raw(
                conn,
                "user_plugins",
                {
                    "id": "i" * 32,
                    "user_id": "u" * 32,
                    "plugin_id": "p" * 32,
                    "config": json.dumps({"url": "https://hooks.example/in", "signingSecret": SIGNING_SECRET}),
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )

        assert await db.migrate(up_to="0010_secrets_at_rest") == ["0010_secrets_at_rest"]
        with db.bound():
            gateways = await Gateway.all().order_by("id")
            install_row = await UserPlugin.get(id="i" * 32)
            assert await Plugin.filter(id="p" * 32).count() == 1
        assert [g.token for g in gateways] == [f"{token}{n}" for n in range(3)]
        assert [g.secret for g in gateways] == [f"{secret}{n}" for n in range(3)]
        assert all(at_rest.is_sealed(g.bot_token) and at_rest.is_sealed(g.webhook_secret) for g in gateways)
        assert [g.bot_token_hash for g in gateways] == [at_rest.lookup_hash(f"{token}{n}") for n in range(3)]
        assert at_rest.is_sealed(install_row.config["signingSecret"])
        assert install_row.config["url"] == "https://hooks.example/in"
        assert open_config(install_row.id, install_row.config)["signingSecret"] == SIGNING_SECRET
    finally:
        await db.close()
        await drop_database(backend, url)


# --- the dump ------------------------------------------------------------------------------------------------


def encodings(value: str) -> set[str]:
    """`value` as it could show in a dump: raw, URL-encoded, and base64 (standard and URL-safe,
    at each of the three alignments it could start at inside a longer encoded text)."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    for shift in range(3):
        padded = b"\0" * shift + raw
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(padded).decode()
            # the characters made of `value`'s bits alone (those at its edges mix in others')
            forms.add(text[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6])
    return {form for form in forms if len(form) >= 8}


def dump(backend: str, database_url: str) -> str:
    if backend == "postgres":
        url = database_url.replace("postgres://", "postgresql://", 1)
        return subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, text=True, check=True).stdout
    path = database_url.split("://", 1)[1]
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


async def test_a_dump_of_the_database_shows_no_token_and_no_signing_secret(app, user, telegram, backend, database_url):
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "forward", dict(FORWARD_CONFIG))
    text = await asyncio.to_thread(dump, backend, database_url)
    assert "gateways" in text and "enc:v1:" in text  # the dump holds the rows, sealed
    for secret in (bot.token, bot.secret, SIGNING_SECRET):
        for form in encodings(secret):
            assert form not in text, f"a form of a secret is in the {backend} dump"
    if backend == "sqlite" and os.path.exists("/usr/bin/sqlite3"):
        cli = await asyncio.to_thread(
            subprocess.run, ["sqlite3", database_url.split("://", 1)[1], ".dump"], capture_output=True, text=True
        )
        assert cli.returncode == 0 and "enc:v1:" in cli.stdout
        for secret in (bot.token, bot.secret, SIGNING_SECRET):
            assert not any(form in cli.stdout for form in encodings(secret))


def test_key_file_of_is_beside_the_sqlite_file_or_in_data_dir(tmp_path: Path):
    assert at_rest.key_file_of(f"sqlite://{tmp_path}/x.sqlite3", "/data") == str(tmp_path / "secret.key")
    assert at_rest.key_file_of("sqlite://:memory:", str(tmp_path)) == str(tmp_path / "secret.key")
    assert at_rest.key_file_of("postgres://u@h/db", str(tmp_path)) is None


async def test_serve_on_sqlite_without_a_key_makes_one_and_prints_where_it_is(tmp_path):
    url = f"sqlite://{tmp_path / 'plugboard.sqlite3'}"
    env = {"SECRET_KEY": "", "SECRET_KEYS": "", "DATABASE_URL": url}
    _, lines, err = await first_lines_of_serve(5, env)
    key_file = tmp_path / "secret.key"
    assert lines[-1] == f"Secret key: {key_file} (generated now; keep it with the database's backups)", err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    _, lines, err = await first_lines_of_serve(5, env)  # the next start uses it
    assert lines[-1] == f"Secret key: {key_file}", err


async def test_a_rotation_cut_short_is_finished_by_running_it_again(app, user, telegram, restore_keyring):
    """A crash after the first batch committed: the next run moves only what is left."""
    from tortoise.transactions import in_transaction

    from app.secrets_store import Moved, _gateways

    bots = [await connect_bot(app, user, telegram, f"bot_{n}") for n in range(3)]
    ring = at_rest.configure([at_rest.generate_key(), TEST_SECRET_KEY])
    with app.db():
        async with in_transaction() as conn:  # the first batch, committed; then the process died
            await _gateways(conn, ring, "", 1, True, Moved())
        resumed = await rotate(ring, batch_size=1)
        gateways = await Gateway.all()
    assert (resumed.gateways, resumed.values) == (2, 4)
    assert all(ring.sealed_by_primary(g.bot_token) and ring.sealed_by_primary(g.webhook_secret) for g in gateways)
    ring_new_only = Keyring(ring.keys[:1])
    assert sorted(ring_new_only.open(g.bot_token, token_place(g.id)) for g in gateways) == sorted(b.token for b in bots)
