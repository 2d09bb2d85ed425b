"""The CPU time each SQL statement costs SQLite in the processes of a bench run: put this directory
on PYTHONPATH and name a file prefix in STATEMENT_CPU, and every Python process started so (the
bench's workers too) writes `<prefix>.<pid>` when it exits, a line per kind of statement, costliest
first. A measuring tool, not part of the product.

    STATEMENT_CPU=/tmp/statements PYTHONPATH=bench/statement_cpu \\
        .venv/bin/python -m bench.processing --cases sqlite

It wraps aiosqlite's statement step (`Connection._execute_fetchall`, on aiosqlite's thread) and
reads that thread's CPU clock around it, so the figures are SQLite's own work (and the driver's
binding of parameters), never the waits for the GIL that the wall clock would add beside a busy
event loop. A commit is not a statement here: its cost is not counted.
"""

from __future__ import annotations

import atexit
import os
import re
import time
from collections import defaultdict
from typing import Any

PREFIX = os.environ.get("STATEMENT_CPU")
_KIND = re.compile(r"(INSERT INTO|UPDATE|DELETE FROM|SELECT .*? FROM)\s+\"?(\w+)", re.IGNORECASE)


def kind_of(sql: str) -> str:
    """`INSERT plugin_executions`, `SELECT gateway_events`, …; an UPDATE by its first words (a claim
    and a completion update the same table)."""
    text = " ".join(sql.split())
    if text.upper().startswith("UPDATE"):
        return text[:60]
    found = _KIND.match(text)
    return f"{found.group(1).split()[0].upper()} {found.group(2)}" if found else text[:40]


if PREFIX:
    import aiosqlite.core

    spent: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])  # calls, CPU seconds, parameters

    def _timed(self: Any, sql: str, parameters: Any) -> Any:
        started = time.thread_time()
        rows = self._conn.execute(sql, parameters).fetchall()
        entry = spent[kind_of(sql)]
        entry[0] += 1
        entry[1] += time.thread_time() - started
        entry[2] += len(parameters) if parameters else 0
        return rows

    def _write() -> None:
        if not spent:
            return
        with open(f"{PREFIX}.{os.getpid()}", "w") as out:
            for kind, (calls, seconds, parameters) in sorted(spent.items(), key=lambda item: -item[1][1]):
                out.write(f"{seconds * 1000:10.1f} ms {int(calls):7d} calls {int(parameters):9d} parameters  {kind}\n")

    aiosqlite.core.Connection._execute_fetchall = _timed  # type: ignore[method-assign]
    atexit.register(_write)
