"""Loads asked for at about the same moment, done in one call: the keys asked for while no batch
is being loaded, or while one is, wait together for the next call.

A key is loaded only by a batch that starts after it was asked for, never served from one already
under way or from an earlier one: what a caller gets was read after it asked. Within the batch a
key is loaded once, however many callers asked for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedLoads(Generic[K, V]):
    """`load_many(keys)` answers each of `keys` (distinct), in one go. Batches run one at a time."""

    def __init__(self, load_many: Callable[[Sequence[K]], Awaitable[dict[K, V]]], max_batch: int = 500) -> None:
        self._load_many = load_many
        self.max_batch = max_batch
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._loader: asyncio.Task[None] | None = None
        self.batches = 0  # batches loaded: tests and benchmarks read it

    async def load(self, key: K) -> V:
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
            if self._loader is None:
                self._loader = asyncio.get_running_loop().create_task(self._load_all(), name="batched-loads")
        return await asyncio.shield(future)  # a caller that gives up leaves the batch to the others

    async def _load_all(self) -> None:
        try:
            await asyncio.sleep(0)  # the callers woken by the same notice ask in the next moments
            while self._pending:
                batch = dict(list(self._pending.items())[: self.max_batch])
                for key in batch:
                    del self._pending[key]
                await self._answer(batch)
        finally:
            self._loader = None
            for future in self._pending.values():  # cancelled: the keys asked for meanwhile are not loaded
                future.cancel()
            self._pending.clear()

    async def _answer(self, batch: dict[K, asyncio.Future[V]]) -> None:
        self.batches += 1
        try:
            values = await self._load_many(list(batch))
        except Exception as exc:  # each caller gets the failure
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for future in batch.values():
                future.cancel()
            raise
        for key, future in batch.items():
            if not future.done():
                if key in values:
                    future.set_result(values[key])
                else:
                    future.set_exception(KeyError(key))


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A failure no caller waits for any more is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()
