"""This process's resident memory, from /proc/self/status. The live app serves in the test's own
process, so this is the server's memory (and the test client's, which is small)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

from app.serve import freeze_heap

MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMemory:
    """The highest resident memory from `start()` on, above what was resident then."""

    def start(self) -> None:
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (the peak) to the current RSS
        self.before = _status_kib("VmRSS") * 1024

    def growth(self) -> int:
        """Bytes: the peak since start(), less what was resident at start()."""
        return _status_kib("VmHWM") * 1024 - self.before


@contextlib.contextmanager
def heap_as_served() -> Iterator[None]:
    """Within it, the garbage collector runs as in a served process (app.serve.freeze_heap): what
    is alive on entry is frozen, and collections come at the served thresholds. The live app serves
    in the test's own process, whose heap also holds what every earlier test of this worker left,
    and which collects at Python's defaults: on a loaded machine its full collections paused the
    event loop for 1 to 2.5 s, and /healthz (whose ping waits 2 s) answered 503 for pauses that a
    served process does not have."""
    thresholds = gc.get_threshold()
    freeze_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
