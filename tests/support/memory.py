"""This process's resident memory, from /proc/self/status. The live app serves in the test's own
process, so this is the server's memory (and the test client's, which is small)."""

from __future__ import annotations

import gc
from pathlib import Path

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
