"""Running a coroutine in the caller's task until it first suspends: most plugin runs never do (a
counter's increment is buffered), nor do most websocket sends (the transport takes the frame), and a
task each costs more than the work. One that suspends goes on in the task it started in, to its
end (a plugin run; app/plugins/router.py), or is awaited to its end by another task (a send; app/graphql/outgoing.py).
For the first, asyncio.current_task() stays the same, so whatever it captured before suspending
(an `asyncio.timeout`, a cancel scope) still holds.

Each run's steps run in a copy of the caller's context, as a task of its own would: a context
variable one plugin sets is never seen by another, nor by the caller.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Started(Generic[T]):
    """A coroutine stepped once: `done` with its `result`, or suspended on `yielded`."""

    coro: Coroutine[Any, Any, T]
    context: contextvars.Context
    done: bool
    result: T | None = None
    yielded: Any = None

    def rest(self) -> Resumed[T]:
        """What to await for the rest of a suspended coroutine, in the task it suspended in."""
        return Resumed(self.coro, self.context, self.yielded)


def start(coro: Coroutine[Any, Any, T]) -> Started[T]:
    """Runs `coro` until it suspends or ends; what it raises is raised here."""
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as stop:
        return Started(coro, context, True, stop.value)
    return Started(coro, context, False, yielded=yielded)


class Resumed(Generic[T]):
    """The rest of a coroutine that suspended on `yielded`: awaiting it hands `yielded` to the task
    (a future to wait for, as `await` would have), then drives the coroutine on, in its own context,
    passing in what the task sends or throws (a cancellation), as `yield from` does."""

    __slots__ = ("_context", "_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], context: contextvars.Context, yielded: Any) -> None:
        self._coro = coro
        self._context = context
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, T]:
        coro, run, value = self._coro, self._context.run, self._yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - passed on to the coroutine, as `yield from` does
                try:
                    value = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = run(coro.send, sent)
                except StopIteration as stop:
                    return stop.value
