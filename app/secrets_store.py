"""The stored secrets as a whole: sealing the plain ones (migration 0010), re-sealing them under
the first key (`python -m app secrets rotate`), and the start-up check that the keys open them.

Both walks go through `gateways` and `user_plugins` by id, `batch_size` rows at a time. Each row
is written with a compare-and-set on the values it read, so a connect or config update racing
the walk is never overwritten (that row is left for the next run). `rotate` commits each batch on
its own: after a crash, running it again skips what the first key sealed already.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app import secrets_at_rest as at_rest
from app.secrets_at_rest import Keyring, Place, SecretUnreadable
from app.sql import is_postgres, placeholders

BATCH_SIZE = 200
_CONFIG_FIELD = "config."


@dataclass
class Moved:
    gateways: int = 0
    installs: int = 0
    values: int = 0
    unreadable: int = 0  # values that do not open (altered, or moved from another row): left as they are

    def __str__(self) -> str:
        text = f"{self.values} secret values in {self.gateways} gateways and {self.installs} plugin installs"
        if self.unreadable:
            text += f"; {self.unreadable} could not be decrypted (altered?) and were left as they are"
        return text


def _reseal(keyring: Keyring, stored: Any, place: Place, rotating: bool, moved: Moved) -> tuple[Any, str | None]:
    """(the value to store, its plain text when known) for one stored value; the value is
    `stored` itself when it needs no change. A plain value is sealed; when `rotating`, a value
    sealed by another key than the first is opened and sealed again (one that does not open is
    left as it is and counted: its gateway or install shows the error)."""
    if not isinstance(stored, str):
        return stored, None
    if not at_rest.is_sealed(stored):
        return keyring.seal(stored, place), stored
    if not rotating or keyring.sealed_by_primary(stored):
        return stored, None
    try:
        plain = keyring.open(stored, place)
    except SecretUnreadable as exc:
        if exc.unknown_key:
            raise
        moved.unreadable += 1
        return stored, None
    return keyring.seal(plain, place), plain


async def _gateways(
    conn: BaseDBAsyncClient, keyring: Keyring, after: str, size: int, rotating: bool, moved: Moved
) -> str | None:
    p = placeholders(conn, 2)
    rows = await conn.execute_query_dict(
        f"SELECT id, bot_token, webhook_secret, bot_token_hash FROM gateways WHERE id > {p[0]} ORDER BY id LIMIT {p[1]}",
        [after, size],
    )
    for row in rows:
        gateway_id = row["id"]
        token, token_plain = _reseal(
            keyring, row["bot_token"], Place("gateways", gateway_id, "bot_token"), rotating, moved
        )
        secret, _ = _reseal(
            keyring, row["webhook_secret"], Place("gateways", gateway_id, "webhook_secret"), rotating, moved
        )
        token_hash = keyring.lookup_hash(token_plain) if token_plain is not None else row["bot_token_hash"]
        changed = (token != row["bot_token"]) + (secret != row["webhook_secret"])
        if not changed and token_hash == row["bot_token_hash"]:
            continue
        q = placeholders(conn, 6)
        updated, _ = await conn.execute_query(
            f"UPDATE gateways SET bot_token = {q[0]}, webhook_secret = {q[1]}, bot_token_hash = {q[2]} "
            f"WHERE id = {q[3]} AND bot_token = {q[4]} AND webhook_secret = {q[5]}",
            [token, secret, token_hash, gateway_id, row["bot_token"], row["webhook_secret"]],
        )
        if not updated:
            continue  # changed meanwhile (a reconnect sealed it anew): left for the next run
        moved.gateways += 1
        moved.values += changed
    return rows[-1]["id"] if rows else None


def _config(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


async def _installs(
    conn: BaseDBAsyncClient, keyring: Keyring, after: str, size: int, rotating: bool, moved: Moved
) -> str | None:
    from app.plugins.secrets import secret_keys

    p = placeholders(conn, 2)
    rows = await conn.execute_query_dict(
        "SELECT u.id, u.config, p.config_schema FROM user_plugins u JOIN plugins p ON p.id = u.plugin_id "
        f"WHERE u.id > {p[0]} ORDER BY u.id LIMIT {p[1]}",
        [after, size],
    )
    for row in rows:
        config = _config(row["config"])
        if not isinstance(config, dict):
            continue
        secrets = secret_keys(_config(row["config_schema"]))
        new: dict[str, Any] = {}
        changed = 0
        for name, value in config.items():
            place = Place("user_plugins", row["id"], _CONFIG_FIELD + name)
            if at_rest.is_sealed(value):
                new[name], _ = _reseal(keyring, value, place, rotating, moved)
            elif value is not None and name in secrets:
                new[name] = keyring.seal(json.dumps(value), place)
            else:
                new[name] = value
            changed += new[name] is not value
        if not changed:
            continue
        q = placeholders(conn, 3)
        cast = "::jsonb" if is_postgres(conn) else ""
        before = row["config"] if isinstance(row["config"], str) else json.dumps(row["config"])
        updated, _ = await conn.execute_query(
            f"UPDATE user_plugins SET config = {q[0]}{cast} WHERE id = {q[1]} AND config = {q[2]}{cast}",
            [json.dumps(new), row["id"], before],
        )
        if not updated:
            continue
        moved.installs += 1
        moved.values += changed
    return rows[-1]["id"] if rows else None


async def seal_plain(conn: BaseDBAsyncClient, keyring: Keyring, batch_size: int = BATCH_SIZE) -> Moved:
    """Seals every value still stored plain (migration 0010), on the migration's connection."""
    moved = Moved()
    for walk in (_gateways, _installs):
        after: str | None = ""
        while after is not None:
            after = await walk(conn, keyring, after, batch_size, False, moved)
    return moved


async def rotate(keyring: Keyring, batch_size: int = BATCH_SIZE, connection: str | None = None) -> Moved:
    """Re-seals every value under the first key, each batch in its own transaction; returns what moved."""
    from tortoise.transactions import in_transaction

    moved = Moved()
    for walk in (_gateways, _installs):
        after: str | None = ""
        while after is not None:
            async with in_transaction(connection) as conn:
                after = await walk(conn, keyring, after, batch_size, True, moved)
    return moved


async def foreign_key_ids(conn: BaseDBAsyncClient, keyring: Keyring, sample: int = 50) -> set[str]:
    """The ids of keys that sealed stored values and that `keyring` lacks (a sample of the newest
    gateways and installs): non-empty means SECRET_KEY is not the key this database was sealed with."""
    p = placeholders(conn, 1)
    found: set[str] = set()
    rows = await conn.execute_query_dict(
        f"SELECT bot_token, webhook_secret FROM gateways ORDER BY created_at DESC LIMIT {p[0]}", [sample]
    )
    values: list[Any] = [v for row in rows for v in (row["bot_token"], row["webhook_secret"])]
    for row in await conn.execute_query_dict(
        f"SELECT config FROM user_plugins ORDER BY updated_at DESC LIMIT {p[0]}", [sample]
    ):
        config = _config(row["config"])
        if isinstance(config, dict):
            values.extend(config.values())
    for value in values:
        if at_rest.is_sealed(value) and not keyring.knows(value):
            found.add(at_rest.key_id_of(value) or "?")
    return found
