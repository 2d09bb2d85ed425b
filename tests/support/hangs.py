"""What a hung test was waiting for: pytest-timeout's hooks (pyproject.toml sets the timeout).

pytest-timeout's thread method prints every thread's stack and ends the process (pytest-xdist then
starts another worker and the run goes on). In this suite a hang is nearly always a coroutine
awaiting something that never comes, and the main thread's stack only shows the event loop waiting
in `select`. So a second before the timeout, this prints the stack of every asyncio task of the
running loops.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import traceback
from types import FrameType
from typing import Any

import pytest

EARLY_SECONDS = 1.0
TIMER = pytest.StashKey[threading.Timer]()


def awaiting(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return frames


def dump_tasks() -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
    for loop in loops:
        tasks = list(asyncio.all_tasks(loop))
        print(f"\n{'+' * 30} {len(tasks)} asyncio tasks of {loop!r} {'+' * 30}", file=sys.stderr)
        for task in tasks:
            try:  # the loop runs on in its thread: a task may change under us
                stack = traceback.StackSummary.extract((f, f.f_lineno) for f in awaiting(task.get_coro()))
                print(f"{task!r} awaits:\n{''.join(stack.format())}", file=sys.stderr)
            except Exception as exc:
                print(f"{task!r}: {exc!r}", file=sys.stderr)
    sys.stderr.flush()


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    if settings.timeout and settings.timeout > EARLY_SECONDS:
        timer = threading.Timer(settings.timeout - EARLY_SECONDS, dump_tasks)
        timer.daemon = True
        timer.start()
        item.stash[TIMER] = timer
    # None: pytest-timeout's own implementation sets its timer too


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(TIMER, None)
    if timer is not None:
        timer.cancel()
