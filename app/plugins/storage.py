"""Key-value storage of one install. A run's writes are buffered and land in one transaction
with the run's record, so a run that fails, times out or is replayed after a crash
leaves no half-written state and never counts twice."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.ids import new_id
from app.plugins.models import StoredValue
from app.sql import insert_rows, is_postgres

_DELETED = object()
_MISSING = object()
_UNKNOWN = object()  # not written by this run or those before it: the database has it


class InstallStorage:
    """One run's view of its install's storage. `before` is the storage of the run of the same
    install just before it, on an earlier event of the same chat, recorded in the same commit: its
    writes are not in the database yet, and this run sees them as if they were."""

    def __init__(self, install_id: str, before: InstallStorage | None = None) -> None:
        self.install_id = install_id
        self._before = before
        self._stored: dict[str, Any] = {}  # values read from the database during this run
        self._writes: dict[str, Any] = {}
        self._increments: dict[str, int] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return (await self.get_many([key], default))[key]

    async def get_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        """Several values in one query; pending writes and increments of this run included."""
        keys = list(keys)
        unread = [k for k in keys if self._view(k) is _UNKNOWN]
        if unread:
            rows = await StoredValue.filter(install_id=self.install_id, key__in=unread).values_list("key", "value")
            found = dict(rows)
            for key in unread:
                self._root()._stored[key] = found.get(key, _MISSING)
        return {key: self._current(key, default) for key in keys}

    def _root(self) -> InstallStorage:
        storage = self
        while storage._before is not None:
            storage = storage._before
        return storage

    def _view(self, key: str) -> Any:
        """The value as this run sees it: _MISSING when absent, _UNKNOWN when only the database knows."""
        if key in self._writes:
            value = self._writes[key]
            value = _MISSING if value is _DELETED else value
        elif self._before is not None:
            value = self._before._view(key)
        else:
            value = self._stored.get(key, _UNKNOWN)
        if key in self._increments:
            if value is _UNKNOWN:
                return _UNKNOWN
            value = (0 if value is _MISSING or value is None else value) + self._increments[key]
        return value

    def _current(self, key: str, default: Any) -> Any:
        value = self._view(key)
        return default if value is _MISSING or value is _UNKNOWN or value is None else value

    async def set(self, key: str, value: Any) -> None:
        self._writes[key] = value
        self._increments.pop(key, None)

    async def delete(self, key: str) -> None:
        self._writes[key] = _DELETED
        self._increments.pop(key, None)

    async def increment(self, key: str, by: int = 1) -> None:
        """Adds `by` when the run commits, atomically against concurrent runs."""
        self._increments[key] = self._increments.get(key, 0) + by

    async def flush(self) -> None:
        """Applies the buffered writes (call inside the run's transaction): at most three statements.
        They stay buffered: a transaction that fails to commit is retried with the same writes."""
        deleted = [k for k, v in self._writes.items() if v is _DELETED]
        written = {k: v for k, v in self._writes.items() if v is not _DELETED}
        if deleted:
            await StoredValue.filter(install_id=self.install_id, key__in=deleted).delete()
        if written:
            await _upsert_one(self.install_id, written, add=False)
        if self._increments:
            await _upsert_one(self.install_id, self._increments, add=True)

    async def commit(self) -> None:
        async with in_transaction():
            await self.flush()
        self._writes.clear()
        self._increments.clear()

    @property
    def dirty(self) -> bool:
        return bool(self._writes or self._increments)


async def flush_together(storages: list[InstallStorage]) -> None:
    """Applies the buffered writes of many runs, in their order, in at most three statements
    (call inside a transaction). A key both set and incremented, or deleted, by different runs is
    applied run by run instead, so the result is always the one of applying them in order. The
    writes stay buffered, for a retry of a transaction that did not commit."""
    storages = [s for s in storages if s.dirty]
    kinds: dict[tuple[str, str], str] = {}
    for storage in storages:
        for key, value in storage._writes.items():
            kind = "delete" if value is _DELETED else "set"
            if kinds.setdefault((storage.install_id, key), kind) != kind or kind == "delete":
                return await _flush_each(storages)
        for key in storage._increments:
            if kinds.setdefault((storage.install_id, key), "add") != "add":
                return await _flush_each(storages)
    written: dict[tuple[str, str], Any] = {}
    added: dict[tuple[str, str], int] = {}
    for storage in storages:
        for key, value in storage._writes.items():
            written[(storage.install_id, key)] = value
        for key, by in storage._increments.items():
            added[(storage.install_id, key)] = added.get((storage.install_id, key), 0) + by
    if written:
        await _upsert(written, add=False)
    if added:
        await _upsert(added, add=True)


async def _flush_each(storages: list[InstallStorage]) -> None:
    for storage in storages:
        await storage.flush()


async def _upsert_one(install_id: str, values: dict[str, Any], add: bool) -> None:
    await _upsert({(install_id, key): value for key, value in values.items()}, add)


async def _upsert(values: dict[tuple[str, str], Any], add: bool) -> None:
    """One INSERT … ON CONFLICT for many (install, key)s: sets replace the value, adds sum into it."""
    conn = StoredValue._meta.db
    table = StoredValue._meta.db_table
    now = utcnow()
    if not add:
        new_value = "excluded.value"
    elif is_postgres(conn):
        new_value = f"to_jsonb(COALESCE(({table}.value #>> '{{}}')::numeric, 0) + (excluded.value #>> '{{}}')::numeric)"
    else:
        new_value = f"COALESCE({table}.value, 0) + excluded.value"
    rows = [[new_id(), install_id, key, json.dumps(value), now] for (install_id, key), value in values.items()]
    on_conflict = f"ON CONFLICT (install_id, key) DO UPDATE SET value = {new_value}, updated_at = excluded.updated_at"
    await insert_rows(
        conn,
        table,
        ("id", "install_id", "key", "value", "updated_at"),
        rows,
        on_conflict,
        jsonb={"value"},
        types=("text", "text", "text", "jsonb", "timestamptz"),
        uniform=("install_id", "updated_at"),
    )
