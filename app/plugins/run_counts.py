"""An install's counters after a commit of its runs: how many ran, the last error, and failures in
a row, which the circuit breaker (app/plugins/breaker.py) then judges. Part of the runs' transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.plugins.breaker import Breaker, Counted
from app.plugins.models import InstallStatus, RunOutcome, UserPlugin
from app.plugins.routing import InstallRoute
from app.sql import is_postgres


async def count_runs(
    ran: Iterable[tuple[InstallRoute, RunOutcome, str | None]], now: datetime, breaker: Breaker
) -> None:
    """Each install's run count, last error and failures in a row (one statement on PostgreSQL,
    one per install on SQLite), from the (install, outcome, error) of the runs that ran, in their
    order; then opens or closes breakers."""
    tallies: dict[str, _Tally] = {}
    for install, outcome, error in ran:
        tallies.setdefault(install.id, _Tally(install)).add(outcome, error)
    if not tallies:
        return
    connection = UserPlugin._meta.db
    rows: list[dict[str, Any]] = []
    if is_postgres(connection):
        tally_list = list(tallies.values())
        rows = await connection.execute_query_dict(
            _COUNT_POSTGRES,
            [
                now,
                [t.route.id for t in tally_list],
                [t.runs for t in tally_list],
                [t.last_error for t in tally_list],
                [t.succeeded for t in tally_list],
                [t.trailing for t in tally_list],
            ],
        )
    else:
        for t in tallies.values():
            params = [t.runs, now, t.last_error, t.succeeded, t.trailing, t.trailing, t.route.id]
            rows += await connection.execute_query_dict(_COUNT_SQLITE, params)
    for row in rows:
        tally = tallies[row["id"]]
        counted = Counted(row["consecutive_failures"], InstallStatus(row["status"]), float(row["backoff_seconds"]))
        if breaker.concerns(counted):
            await breaker.judge(tally.route, counted, tally.succeeded, tally.last_error, now)


@dataclass
class _Tally:
    """What one commit's runs of one install add up to."""

    route: InstallRoute
    runs: int = 0
    succeeded: bool = False  # any run succeeded: failures in a row restart from the last success
    trailing: int = 0  # failures after the last success
    last_error: str | None = None

    def add(self, outcome: RunOutcome, error: str | None) -> None:
        self.runs += 1
        self.last_error = error
        if outcome == RunOutcome.SUCCEEDED:
            self.succeeded, self.trailing = True, 0
        else:
            self.trailing += 1


_COUNT_POSTGRES = """
UPDATE user_plugins AS u SET
    execution_count = u.execution_count + v.runs,
    last_executed_at = $1,
    last_error = v.last_error,
    consecutive_failures = CASE WHEN v.succeeded THEN v.failures ELSE u.consecutive_failures + v.failures END
FROM unnest($2::text[], $3::int[], $4::text[], $5::boolean[], $6::int[]) AS v(id, runs, last_error, succeeded, failures)
WHERE u.id = v.id
RETURNING u.id, u.consecutive_failures, u.status, u.backoff_seconds
"""
_COUNT_SQLITE = """
UPDATE user_plugins SET execution_count = execution_count + ?, last_executed_at = ?, last_error = ?,
    consecutive_failures = CASE WHEN ? THEN ? ELSE consecutive_failures + ? END
WHERE id = ? RETURNING id, consecutive_failures, status, backoff_seconds
"""
