"""Key-value storage of one install. A run's writes are buffered and land in one transaction
with the run's execution record, so a run that fails, times out or is replayed after a crash
leaves no half-written state and never counts twice."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.plugins.models import PluginStorage

_DELETED = object()


class InstallStorage:
    def __init__(self, install_id: str) -> None:
        self.install_id = install_id
        self._writes: dict[str, Any] = {}
        self._increments: dict[str, int] = {}

    async def _stored(self, key: str) -> Any:
        row = await PluginStorage.filter(install_id=self.install_id, key=key).first()
        return None if row is None else row.value

    async def get(self, key: str, default: Any = None) -> Any:
        if key in self._writes:
            value = self._writes[key]
            value = None if value is _DELETED else value
        else:
            value = await self._stored(key)
        if key in self._increments:
            value = (value or 0) + self._increments[key]
        return default if value is None else value

    async def set(self, key: str, value: Any) -> None:
        self._writes[key] = value
        self._increments.pop(key, None)

    async def delete(self, key: str) -> None:
        self._writes[key] = _DELETED
        self._increments.pop(key, None)

    async def increment(self, key: str, by: int = 1) -> int:
        """Adds `by` atomically when the run commits; returns the value as this run sees it."""
        self._increments[key] = self._increments.get(key, 0) + by
        return int(await self.get(key, 0))

    @property
    def dirty(self) -> bool:
        return bool(self._writes or self._increments)

    async def flush(self) -> None:
        """Applies the buffered writes; call inside the run's transaction."""
        for key, value in self._writes.items():
            if value is _DELETED:
                await PluginStorage.filter(install_id=self.install_id, key=key).delete()
            else:
                await _upsert(self.install_id, key, value)
        for key, by in self._increments.items():
            await _add(self.install_id, key, by)
        self._writes.clear()
        self._increments.clear()

    async def commit(self) -> None:
        async with in_transaction():
            await self.flush()


async def _upsert(install_id: str, key: str, value: Any) -> None:
    for _ in range(2):
        if await PluginStorage.filter(install_id=install_id, key=key).update(value=value):
            return
        if await _create(install_id, key, value):
            return


async def _add(install_id: str, key: str, by: int) -> None:
    for _ in range(2):
        row = await PluginStorage.filter(install_id=install_id, key=key).select_for_update().first()
        if row is not None:
            row.value = int(row.value or 0) + by
            await row.save(update_fields=["value", "updated_at"])
            return
        if await _create(install_id, key, by):
            return


async def _create(install_id: str, key: str, value: Any) -> bool:
    """Inserts the key in a savepoint; False when a concurrent run inserted it first."""
    try:
        async with in_transaction():
            await PluginStorage.create(install_id=install_id, key=key, value=value)
    except IntegrityError:
        return False
    return True
