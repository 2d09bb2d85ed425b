"""`python -m app secrets generate-key|rotate`, and the keys every command starts with.

`prepare(settings, command)` runs before anything touches the database: it installs the keyring
(app/secrets_at_rest.py) from SECRET_KEY / SECRET_KEYS, or for an embedded SQLite deployment from
its key file, which the first `serve`, `worker` or `migrate` generates (mode 0600). PostgreSQL
without a key is refused by the commands that need one. `check_stored(settings)`, after
migrations, stops a start-up whose keys cannot open what the database holds.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from app import secrets_at_rest as at_rest
from app.db import Database, connection_name
from app.secrets_store import foreign_key_ids, rotate
from app.settings import Settings

NEEDS_KEY = ("serve", "worker", "migrate", "secrets")


class KeyProblem(Exception):
    """One line for the CLI's `error:`; it names SECRET_KEY."""


def add_secrets_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    secrets = commands.add_parser(
        "secrets",
        parents=parents,
        help="make a SECRET_KEY, or re-seal stored secrets with the first key",
        description="Bot tokens, webhook secrets and secret plugin settings are stored encrypted with "
        "SECRET_KEY (or SECRET_KEYS=new,old,…: the first encrypts, any decrypts).",
    )
    actions = secrets.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    actions.add_parser("generate-key", parents=parents, help="print a new random key for SECRET_KEY")
    rotate = actions.add_parser(
        "rotate",
        parents=parents,
        help="re-encrypt every stored secret with the first key of SECRET_KEYS",
        description="Re-encrypts, in batches each committed on its own, every stored secret that another "
        "key sealed, with the first key of SECRET_KEYS; run it again after a crash. Then drop the old key.",
    )
    rotate.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default: 200)")


def prepare(settings: Settings, command: str) -> tuple[Settings, str | None]:
    """The settings with their keys (generating the embedded key file when it is time), installed
    as the process's keyring, and a line saying where an embedded key is (None otherwise)."""
    if settings.secret_keys:
        at_rest.configure(settings.secret_keys)
        where = f"Secret key: {settings.secret_key_file}" if settings.secret_key_file else None
        return settings, where
    if settings.secret_key_file is not None:  # SQLite, and its key file is not made yet
        if command not in NEEDS_KEY:
            return settings, None
        key = at_rest.create_key_file(settings.secret_key_file)
        settings = replace(settings, secret_keys=(key,))
        at_rest.configure(settings.secret_keys)
        return settings, f"Secret key: {settings.secret_key_file} (generated now; keep it with the database's backups)"
    if command in NEEDS_KEY:
        raise KeyProblem(
            "SECRET_KEY is not set: a PostgreSQL deployment must be given the key its secrets are encrypted "
            f"with; {at_rest.GENERATE_HINT} and set SECRET_KEY to it"
        )
    return settings, None


async def check_stored(db: Database) -> None:
    """Raises KeyProblem when stored secrets were sealed by keys that SECRET_KEY does not hold:
    a wrong key stops start-up before anything could be written with it."""
    keyring = at_rest.keyring()
    with db.bound() as ctx:
        unknown = await foreign_key_ids(ctx.db(), keyring)
    if unknown:
        held = ", ".join(key.key_id for key in keyring.keys) or "none"
        raise KeyProblem(
            f"SECRET_KEY cannot decrypt the stored secrets: they were encrypted with key id "
            f"{', '.join(sorted(unknown))}, and SECRET_KEY/SECRET_KEYS holds {held}; start with the key "
            "they were encrypted with (add it to SECRET_KEYS to rotate away from it). Nothing was changed."
        )


async def rotate_command(settings: Settings, batch_size: int) -> str:
    db = Database(settings.database_url)
    await db.open()
    try:
        await db.migrate()
        await check_stored(db)
        keyring = at_rest.keyring()
        with db.bound():
            try:
                moved = await rotate(keyring, max(1, batch_size), connection_name(settings.database_url))
            except at_rest.SecretUnreadable as exc:
                raise KeyProblem(f"{exc}; add that key to SECRET_KEYS (after the new one) and run it again") from None
    finally:
        await db.close()
    return f"Re-encrypted {moved} with key {keyring.primary.key_id}."
