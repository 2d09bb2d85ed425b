"""Group commit: the items of many callers written in one transaction, each caller answered alone.

A caller `put`s an item and waits for its own result. A writer takes every item queued (up to
`max_group`, by weight) and commits them with one call. A group the database refuses for what
one of its items holds is halved until each refused item stands alone: the rest is committed,
and only a refused item's caller hears of it (about 2·log2(n) commits for one bad item among n).
Any other failure (the database is unavailable) answers every caller not yet committed.

The inbox (app/gateways/inbox_writer.py) and the run recorder (app/plugins/run_groups.py) write
through it. The groups are taken by a task, with up to `max_in_flight` of them committing at
once; or, on a SQLite file, by a thread of the writer's own (`CommitThread`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.backends.sqlite.client import SqliteClient

from app.db_errors import describe
from app.supervision import cancel, start_supervised

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class Waiting(Generic[T, R]):
    """An item put, and its caller's answer."""

    item: T
    weight: int
    answer: asyncio.Future[R]


def settle(answer: asyncio.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Answers a caller, unless it went away (its future is done: cancelled with its request)."""
    if answer.done():
        return
    if error is None:
        answer.set_result(result)
    else:
        answer.set_exception(error)


@dataclass(frozen=True)
class Failures:
    """What the callers of a failed group hear.

    `refused(error)`: the error that a lone item's caller hears when `error` refuses what the group
    holds (so the group is halved to find the item), or None when it does not (the database is
    unavailable): then every caller not yet committed hears `unavailable(error, count)`. `stopping()`
    is what callers hear when the writer stops before their item is committed.
    """

    refused: Callable[[Exception], BaseException | None]
    unavailable: Callable[[Exception, int], BaseException]
    stopping: Callable[[], BaseException]


def _one(_: object) -> int:
    return 1


class GroupCommit(Generic[T, R]):
    """`commit(items)` answers one result per item, in their order, or raises for the group."""

    def __init__(
        self,
        name: str,
        commit: Callable[[list[T]], Awaitable[Sequence[R]]],
        failures: Failures,
        max_group: int,
        max_in_flight: int = 1,
        weigh: Callable[[T], int] = _one,
    ) -> None:
        self.name = name
        self.max_group = max_group
        self._commit = commit
        self._failures = failures
        self._weigh = weigh
        self._queue: deque[Waiting[T, R]] = deque()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._thread: CommitThread[Waiting[T, R]] | None = None
        self._write_on_thread: Callable[[sqlite3.Connection, list[T]], Sequence[R]] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._context = contextvars.copy_context()
        self._closed = False
        self.on_commit: list[Callable[[], None]] = []  # called after each commit that wrote anything

    @property
    def thread(self) -> CommitThread[Waiting[T, R]] | None:
        return self._thread

    def start(
        self,
        thread: CommitThread[Waiting[T, R]] | None = None,
        write_on_thread: Callable[[sqlite3.Connection, list[T]], Sequence[R]] | None = None,
    ) -> None:
        """Starts taking groups: on a task, or on `thread` when given, which commits each group with
        `write_on_thread(connection, items)` (so does a group's split). Items put before wait until now.

        Each commit runs in a copy of the context this is called in: whatever a failed commit might
        leave in its task's context (a transaction on a connection that died), the next never sees."""
        self._closed = False
        self._context = contextvars.copy_context()
        if thread is None:
            self._task = start_supervised(self.name, self._take_groups)
            self._wake.set()
            return
        assert write_on_thread is not None
        self._thread, self._write_on_thread = thread, write_on_thread
        thread.start(self._on_thread, self._thread_wrote)
        while self._queue:
            thread.put(self._queue.popleft())

    async def stop(self) -> None:
        """Stops once the groups being written are; whoever still waits hears `stopping()`."""
        self._closed = True
        await cancel([task for task in (self._task, *self._writes) if task is not None])
        self._task = None
        left = self._thread.stop() if self._thread is not None else []
        self._thread = None
        left += self._queue
        self._queue.clear()
        for waiting in left:
            settle(waiting.answer, error=self._failures.stopping())

    async def put(self, item: T) -> R:
        """Returns once `item` is committed, with its result."""
        if self._closed:
            raise self._failures.stopping()
        waiting: Waiting[T, R] = Waiting(item, self._weigh(item), asyncio.get_running_loop().create_future())
        if self._thread is not None:
            self._thread.put(waiting)
        else:
            self._queue.append(waiting)
            self._wake.set()
        return await waiting.answer

    async def _take_groups(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._slots.acquire()
                group = take_group(self._queue, self.max_group)
                if not group:
                    self._slots.release()
                    continue
                self._spawn([group], holds_slot=True)

    def _spawn(self, groups: list[list[Waiting[T, R]]], holds_slot: bool) -> None:
        task = asyncio.get_running_loop().create_task(
            self._write(groups, holds_slot), name=f"{self.name}-write", context=self._context.copy()
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, groups: list[list[Waiting[T, R]]], holds_slot: bool) -> None:
        """Commits what it can of `groups` and answers every caller."""
        landed = False
        try:
            while groups:
                group = groups[-1]
                try:
                    results = await self._commit_now([waiting.item for waiting in group])
                except Exception as exc:
                    if self._split(group, exc, groups):
                        continue
                    self._unavailable([waiting for g in groups for waiting in g], exc)
                    return
                groups.pop()
                landed = True
                for waiting, result in zip(group, results, strict=True):
                    settle(waiting.answer, result)
        except asyncio.CancelledError:  # stopped mid-write: nobody is left waiting
            for waiting in (waiting for g in groups for waiting in g):
                settle(waiting.answer, error=self._failures.stopping())
            raise
        except Exception as exc:  # a bug of ours: the callers hear of it, and the writer goes on
            log.exception("%s failed", self.name)
            self._unavailable([waiting for g in groups for waiting in g], exc)
        finally:
            if holds_slot:
                self._slots.release()
            if landed:
                self._landed()

    async def _commit_now(self, items: list[T]) -> Sequence[R]:
        if self._thread is None or self._write_on_thread is None:
            return await self._commit(items)
        write = self._write_on_thread
        results: Sequence[R] = await self._thread.run(lambda connection: write(connection, items))
        return results

    def _on_thread(self, connection: sqlite3.Connection, group: list[Waiting[T, R]]) -> Sequence[R]:
        assert self._write_on_thread is not None
        return self._write_on_thread(connection, [waiting.item for waiting in group])

    def _split(self, group: list[Waiting[T, R]], exc: Exception, groups: list[list[Waiting[T, R]]]) -> bool:
        """After `group` (the last of `groups`) failed with `exc`: when `exc` refuses what the group
        holds, answers a lone item or puts the group's halves in its place, and says True."""
        refused = self._failures.refused(exc)
        if refused is None:
            return False
        if len(group) > 1:
            log.info("%s: a group of %d was refused, splitting it: %s", self.name, len(group), describe(exc))
        groups.pop()
        if len(group) == 1:
            settle(group[0].answer, error=refused)
        else:
            middle = len(group) // 2
            groups += [group[middle:], group[:middle]]
        return True

    def _thread_wrote(self, group: list[Waiting[T, R]], results: Sequence[R] | None, error: Exception | None) -> None:
        """The outcome of one of the thread's groups, on the event loop."""
        if error is None:
            assert results is not None
            for waiting, result in zip(group, results, strict=True):
                settle(waiting.answer, result)
            self._landed()
        elif self._split(group, error, groups := [group]):
            if groups and not self._closed:
                self._spawn(groups, holds_slot=False)
        else:
            self._unavailable(group, error)

    def _unavailable(self, waiting: list[Waiting[T, R]], exc: Exception) -> None:
        error = self._failures.unavailable(exc, len(waiting))
        for each in waiting:
            settle(each.answer, error=error)

    def _landed(self) -> None:
        for listener in self.on_commit:
            listener()


def take_group(queue: deque[Waiting[T, R]], max_weight: int) -> list[Waiting[T, R]]:
    """The next group: items in the order they came, up to `max_weight` (the first whatever its
    weight), leaving out those whose caller went away."""
    group: list[Waiting[T, R]] = []
    weight = 0
    while queue and (not group or weight + queue[0].weight <= max_weight):
        waiting = queue.popleft()
        if not waiting.answer.done():
            group.append(waiting)
            weight += waiting.weight
    return group


class CommitThread(Generic[T]):
    """A thread with a connection of its own to tortoise's SQLite file, that commits groups of items.

    Each time the thread is free it takes every item queued (up to `max_group`), writes them with
    `write(connection, items)` in one go, and reports `done(items, results, error)` on the event
    loop. It starts on the next group as soon as one is written, without waiting for the event loop;
    groups are written in the order their items were queued. It never waits for tortoise's
    connection lock nor holds it: the two connections share the file as two processes would (BEGIN
    IMMEDIATE, the busy timeout). The connection is opened on first use with tortoise's pragmas.
    GroupCommit drives it.
    """

    def __init__(self, filename: str, pragmas: dict[str, Any], max_group: int) -> None:
        self.filename = filename
        self.pragmas = dict(pragmas)
        self._max_group = max_group
        self._write: Callable[[sqlite3.Connection, list[T]], Sequence[Any]] = lambda connection, items: []
        self._done: Callable[[list[T], Sequence[Any] | None, Exception | None], None] = lambda *outcome: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = threading.Condition()
        self._queued: list[T] = []
        self._writing: list[T] = []
        self._jobs: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="sqlite-group-commit", daemon=True)

    @staticmethod
    def file_of(client: object) -> str | None:
        """The file of tortoise's SQLite client; None for another database, or an in-memory one
        (which a second connection would not see)."""
        if not isinstance(client, SqliteClient):
            return None
        if client.filename in ("", ":memory:") or "mode=memory" in client.filename:
            return None
        return client.filename

    @property
    def writing(self) -> list[T]:
        """The group being written."""
        return self._writing

    def start(
        self,
        write: Callable[[sqlite3.Connection, list[T]], Sequence[Any]],
        done: Callable[[list[T], Sequence[Any] | None, Exception | None], None],
    ) -> None:
        self._write, self._done = write, done
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def put(self, item: T) -> None:
        if not self._thread.is_alive():  # stopped, or died: nobody would ever write it
            raise RuntimeError("the group commit's thread is not running")
        with self._changed:
            self._queued.append(item)
            self._changed.notify()

    async def run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """`work(connection)` on the thread, before its next group."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._changed:
            self._jobs.append((work, future))
            self._changed.notify()
        return await future

    def stop(self) -> list[T]:
        """Stops once the group being written is; returns the items not known to be written."""
        with self._changed:
            self._stopping = True
            left = self._writing + self._queued
            self._queued = []
            self._changed.notify()
        return left

    def _work(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                with self._changed:
                    while not (self._queued or self._jobs or self._stopping):
                        self._changed.wait()
                    if self._stopping:
                        for _, future in self._jobs:
                            self._post(settle, future, None, RuntimeError("stopped"))
                        return
                    jobs, self._jobs = self._jobs, []
                    self._writing = self._queued[: self._max_group]
                    del self._queued[: self._max_group]
                for work, future in jobs:
                    try:
                        connection = connection or self._connect()
                        self._post(settle, future, work(connection), None)
                    except Exception as exc:
                        self._post(settle, future, None, exc)
                if self._writing:
                    results: Sequence[Any] | None = None
                    error: Exception | None = None
                    try:
                        connection = connection or self._connect()
                        results = self._write(connection, self._writing)
                    except Exception as exc:
                        error = exc
                    self._post(self._done, self._writing, results, error)
                    with self._changed:
                        self._writing = []
        finally:
            if connection is not None:
                connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.filename, isolation_level=None, check_same_thread=False)
        try:
            for pragma, value in self.pragmas.items():  # busy_timeout first: app/db.py puts it there
                connection.execute(f"PRAGMA {pragma}={value}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop is closed: nobody is left to tell
            pass
