"""The circuit breaker: after `failures` failed runs in a row an install is FAILING, and its events
are skipped until a trial run at its probe time; a trial that fails doubles the wait (up to
`max_backoff_seconds`), one that succeeds makes it ACTIVE again. Its states change through
app/plugins/states.py, as every install state does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.plugins.models import InstallStatus, UserPlugin
from app.plugins.routing import InstallRoute
from app.plugins.states import Target, change, keep_failing

REASON_LIMIT = 2_000


def breaker_reason(failures: int, error: str | None, probe_at: datetime) -> str:
    last = f" The last error: {error}" if error else ""
    return (
        f"Paused after {failures} failed runs in a row; its events are skipped until a trial run "
        f"at {probe_at.isoformat(timespec='seconds')} succeeds.{last}"
    )[:REASON_LIMIT]


@dataclass(frozen=True)
class Counted:
    """An install's counters just after a commit of its runs."""

    consecutive_failures: int
    status: InstallStatus
    backoff_seconds: float


@dataclass(frozen=True)
class Breaker:
    failures: int  # BREAKER_FAILURES, and so on: the defaults are the settings'
    backoff_seconds: float
    max_backoff_seconds: float

    def concerns(self, counted: Counted) -> bool:
        """Whether the breaker may change anything: enough failures in a row, or already open."""
        return counted.consecutive_failures >= self.failures or counted.status == InstallStatus.FAILING

    async def judge(
        self, route: InstallRoute, counted: Counted, succeeded: bool, error: str | None, now: datetime
    ) -> None:
        """Opens, closes or re-arms the breaker after a commit of the install's runs (inside its
        transaction). `succeeded`: any of those runs succeeded; `error`: the last run's."""
        install = UserPlugin(id=route.id, user_id=route.user_id, plugin_id=route.plugin_id, status=counted.status)
        if counted.status == InstallStatus.ACTIVE and counted.consecutive_failures >= self.failures:
            probe_at = now + timedelta(seconds=self.backoff_seconds)
            target = Target(InstallStatus.FAILING, breaker_reason(counted.consecutive_failures, error, probe_at))
            await change(
                install,
                target,
                "circuit breaker opened",
                route.slug,
                probe_at=probe_at,
                backoff_seconds=self.backoff_seconds,
            )
        elif counted.status == InstallStatus.FAILING and succeeded:
            trial = "a trial run" if route.status == InstallStatus.FAILING else "a run"
            await change(
                install, Target(InstallStatus.ACTIVE), f"circuit breaker closed: {trial} succeeded", route.slug
            )
        elif counted.status == InstallStatus.FAILING and route.status == InstallStatus.FAILING:
            # A failed trial (routed while FAILING, its probe due). Failures routed before the
            # breaker opened, still running on an older route, are no trial: they change nothing.
            backoff = min(max(counted.backoff_seconds, self.backoff_seconds) * 2, self.max_backoff_seconds)
            probe_at = now + timedelta(seconds=backoff)
            reason = breaker_reason(counted.consecutive_failures, error, probe_at)
            await keep_failing(install, reason, probe_at=probe_at, backoff_seconds=backoff)
