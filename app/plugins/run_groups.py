"""The runs of many lanes recorded together: each lane waits for its own result, and whatever lanes
finished meanwhile are committed in one transaction (app.batching's group commit). A group that
fails for what one lane's runs hold (a plugin's write that fails) is split until that lane stands
alone; the database unavailable fails the group."""

from __future__ import annotations

from dataclasses import dataclass

from app.batching import Failures, GroupCommit
from app.db_errors import is_unavailable
from app.gateways.inbox import ClaimedEvent
from app.plugins.runs import Run, RunRecorder

MAX_RUNS_PER_GROUP = 2_000


class RecorderStopping(Exception):
    """The run recorder stopped before these runs were recorded."""


@dataclass(frozen=True)
class Recording:
    """One lane's runs, and the inbox events they finish."""

    runs: list[Run]
    done: list[ClaimedEvent]


def _refused(exc: Exception) -> Exception | None:
    return None if is_unavailable(exc) else exc


_FAILURES = Failures(
    refused=_refused,
    unavailable=lambda exc, count: exc,
    stopping=lambda: RecorderStopping("the run recorder is stopping"),
)


def recording_groups(recorder: RunRecorder, max_runs: int = MAX_RUNS_PER_GROUP) -> GroupCommit[Recording, list[Run]]:
    """`put(Recording(runs, done))` answers the runs of that lane recorded now."""

    async def commit(group: list[Recording]) -> list[list[Run]]:
        recorded = await recorder.record(
            [run for r in group for run in r.runs], [event for r in group for event in r.done]
        )
        ids = {run.id for run in recorded}
        return [[run for run in r.runs if run.id in ids] for r in group]

    return GroupCommit("run-recorder", commit, _FAILURES, max_runs, weigh=lambda recording: len(recording.runs))
