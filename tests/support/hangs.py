"""A hung test fails with what it was waiting for, and no hang stops the run (pytest-timeout's
hooks; pyproject.toml sets the timeout and its signal method).

At the timeout, pytest-timeout's signal method fails the test where the main thread stands: in an
asyncio test that is the event loop waiting in `select`, which says nothing. So a second before,
this prints the await chain of every asyncio task of the running loops into the test's captured
stderr, which the failure report shows. Should the test still not end (its teardown hangs too, or
the main thread never returns to Python to take the signal), a backstop a minute later prints every
thread's stack and task to the real stderr and ends the process; pytest-xdist reports the worker
down and starts another.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import sys
import threading
import traceback
from types import FrameType
from typing import IO, Any

import pytest

EARLY_SECONDS = 1.0
BACKSTOP_SECONDS = 60.0
TIMERS = pytest.StashKey[tuple[threading.Timer, ...]]()


def awaiting(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return frames


def dump_tasks(file: IO[str] | None = None) -> None:
    out = file or sys.stderr
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
    for loop in loops:
        tasks = list(asyncio.all_tasks(loop))
        print(f"\n{'+' * 30} {len(tasks)} asyncio tasks of {loop!r} {'+' * 30}", file=out)
        for task in tasks:
            try:  # the loop runs on in its thread: a task may change under us
                stack = traceback.StackSummary.extract((f, f.f_lineno) for f in awaiting(task.get_coro()))
                print(f"{task!r} awaits:\n{''.join(stack.format())}", file=out)
            except Exception as exc:
                print(f"{task!r}: {exc!r}", file=out)
    out.flush()


def end_the_process(item: pytest.Item, seconds: float) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(item)
    print(f"\n{'+' * 30} {item.nodeid} still runs {seconds:g} s after it started: ending this process", file=sys.stderr)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    dump_tasks(sys.stderr)
    os._exit(1)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    if not settings.timeout:
        return
    early = threading.Timer(max(settings.timeout - EARLY_SECONDS, 0), dump_tasks)
    backstop_after = settings.timeout + BACKSTOP_SECONDS
    backstop = threading.Timer(backstop_after, end_the_process, (item, backstop_after))
    item.stash[TIMERS] = (early, backstop)
    for timer in (early, backstop):
        timer.daemon = True
        timer.start()
    # None: pytest-timeout's own timer is set too


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    for timer in item.stash.get(TIMERS, ()):
        timer.cancel()
