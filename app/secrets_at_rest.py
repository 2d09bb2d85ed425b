"""Secrets at rest: bot tokens, webhook secrets and `writeOnly` plugin settings, sealed with AES-GCM.

A sealed value is text: `enc:v1:<key id>:<base64url(nonce + ciphertext)>`. The associated data
binds it to its table, row and field (`gateways/<id>/bot_token`), so a value copied into another
row, or another field, does not open. The key id (8 hex digits derived from the key, which says
nothing about it) tells which key sealed a value, so rotation and the migration can tell sealed
values from plain ones and the old key's from the new one's.

Keys: SECRET_KEY, or SECRET_KEYS=new,old,… (the first seals, any opens). A key is 32 or more
random bytes in base64url (`python -m app secrets generate-key`). From each key two others are
derived: the AES-256 key, and the HMAC key of lookup hashes (a row found by a secret's value, a
bot token, is found by `lookup_hashes(token)`, never by decrypting a table).

The process holds one keyring, installed with `configure(keys)` at start-up (`python -m app`,
`Platform`); the migration and `secrets rotate` use it too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
MIN_KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "secret.key"
GENERATE_HINT = "make one with `python -m app secrets generate-key`"


class SecretKeyError(ValueError):
    """A key that cannot be used (too short, not base64url). Its text names SECRET_KEY."""

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name} is not valid: expected {expected}")
        self.expected = expected


class SecretUnreadable(Exception):
    """A stored secret that does not open: sealed by a key this process does not have, tampered
    with, or moved from another row or field. Its text says which and never holds the value."""

    def __init__(self, message: str, unknown_key: bool = False) -> None:
        super().__init__(message)
        self.unknown_key = unknown_key


@dataclass(frozen=True)
class Place:
    """Where a secret lives: its associated data."""

    table: str
    row: str
    field: str

    @property
    def associated_data(self) -> bytes:
        return f"plugboard/{self.table}/{self.row}/{self.field}".encode()

    def __str__(self) -> str:
        return f"{self.table} {self.row} {self.field}"


def _derive(master: bytes, purpose: bytes) -> bytes:
    return hmac.new(master, b"plugboard:" + purpose, hashlib.sha256).digest()


@dataclass(frozen=True)
class Key:
    key_id: str
    cipher: AESGCM
    lookup: bytes

    @classmethod
    def parse(cls, text: str, name: str = "SECRET_KEY") -> Key:
        raw = text.strip()
        expected = f"{MIN_KEY_BYTES} or more random bytes in base64url (43 or more characters); {GENERATE_HINT}"
        if not raw or any(c not in _B64URL for c in raw):
            raise SecretKeyError(name, expected)
        try:
            master = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            raise SecretKeyError(name, expected) from None
        if len(master) < MIN_KEY_BYTES:
            raise SecretKeyError(name, expected)
        return cls(
            key_id=_derive(master, b"key-id")[:4].hex(),
            cipher=AESGCM(_derive(master, b"aes-256-gcm")),
            lookup=_derive(master, b"lookup-hmac"),
        )


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def generate_key() -> str:
    """A new key: 32 random bytes in base64url (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode().rstrip("=")


def parse_keys(texts: Sequence[str], name: str = "SECRET_KEY") -> tuple[Key, ...]:
    keys = tuple(Key.parse(text, name) for text in texts)
    if len({key.key_id for key in keys}) != len(keys):
        raise SecretKeyError(name, "different keys (one is given twice)")
    return keys


class Keyring:
    def __init__(self, keys: Sequence[Key]) -> None:
        self.keys = tuple(keys)
        self._by_id = {key.key_id: key for key in self.keys}

    @classmethod
    def of(cls, texts: Sequence[str]) -> Keyring:
        return cls(parse_keys(texts))

    @property
    def primary(self) -> Key:
        if not self.keys:
            raise SecretUnreadable(f"no SECRET_KEY is configured; {GENERATE_HINT}", unknown_key=True)
        return self.keys[0]

    def seal(self, plain: str, place: Place) -> str:
        key = self.primary
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.cipher.encrypt(nonce, plain.encode(), place.associated_data)
        return f"{PREFIX}{key.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, place: Place) -> str:
        """The plain value of a sealed one. Raises SecretUnreadable."""
        if not is_sealed(stored):
            raise SecretUnreadable(f"the secret in {place} is not sealed")
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        key = self._by_id.get(key_id)
        if key is None:
            raise SecretUnreadable(
                f"the secret in {place} was sealed with a key that SECRET_KEY does not hold (key id {key_id})",
                unknown_key=True,
            )
        try:
            data = base64.urlsafe_b64decode(body)
            plain = key.cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], place.associated_data)
            return plain.decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            raise SecretUnreadable(
                f"the secret in {place} does not decrypt: it was altered, or copied from another row"
            ) from None

    def sealed_by_primary(self, stored: str) -> bool:
        return key_id_of(stored) == self.primary.key_id

    def knows(self, stored: str) -> bool:
        return key_id_of(stored) in self._by_id

    def lookup_hash(self, value: str, key: Key | None = None) -> str:
        """The keyed hash (HMAC-SHA256) a row is found by, under the first key (or `key`)."""
        return hmac.new((key or self.primary).lookup, value.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        """The hashes `value` may be stored under, one per key (rows hashed before a rotation)."""
        return [self.lookup_hash(value, key) for key in self.keys]


def is_sealed(stored: object) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    if not is_sealed(stored):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


def key_file_of(database_url: str, data_dir: str) -> str | None:
    """Where an embedded (SQLite) deployment keeps its generated key: beside the database (in
    DATA_DIR for the default one). None for PostgreSQL, which must be given SECRET_KEY."""
    scheme, _, rest = database_url.partition("://")
    if not scheme.lower().startswith("sqlite"):
        return None
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:":
        return str(Path(data_dir) / KEY_FILE_NAME)
    return str(Path(path).expanduser().resolve().parent / KEY_FILE_NAME)


def create_key_file(path: str) -> str:
    """Writes a new key to `path` (mode 0600; never over an existing file) and returns it; when
    another process made it first, returns that one."""
    key = generate_key()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Path(path).read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


_keyring = Keyring(())


def configure(keys: Iterable[str]) -> Keyring:
    """Installs the process's keyring (raises SecretKeyError for a key that cannot be used)."""
    global _keyring
    _keyring = Keyring.of(list(keys))
    return _keyring


def keyring() -> Keyring:
    return _keyring


def seal(plain: str, place: Place) -> str:
    return _keyring.seal(plain, place)


def open_sealed(stored: str, place: Place) -> str:
    return _keyring.open(stored, place)


def lookup_hash(value: str) -> str:
    return _keyring.lookup_hash(value)


def lookup_hashes(value: str) -> list[str]:
    return _keyring.lookup_hashes(value)
