"""The event path's Python, in-process: CPU microseconds per event through the router and the
executor (`EventRouter.gateway_event`), for one owner whose 1 or 10 counter installs
(bench/counter_worker.py) each count the event. No database, no recording, no parse: what one
event's runs cost, which machine load moves far less than a worker's events per second.

    .venv/bin/python -m bench.event_path                       # 1 and 10 installs, best of 7
    .venv/bin/python -m bench.event_path --installs 10 --events 5000
"""

from __future__ import annotations

import argparse
import asyncio
import time

from app.accounts.models import Plan
from app.gateways.models import GatewayType
from app.plugins.contract import EventType, RunTrigger, TelegramMessageEvent
from app.plugins.executor import Executor
from app.plugins.models import InstallStatus, RunOutcome
from app.plugins.registry import PluginRegistry
from app.plugins.router import EventRouter, Storages
from app.plugins.routing import InstallRoute, OwnerRoutes, RoutingCache
from app.plugins.runs import Origin, Run
from bench.counter_worker import counter_handlers

GATEWAY = "bench-gateway"
OWNER = "bench-owner"
LANE_BATCH = 64  # a lane's events share their storages this many at a time (app/plugins/dispatcher.py)


class OneOwner(RoutingCache):
    """The routes of one owner, always cached."""

    def __init__(self, routes: OwnerRoutes) -> None:
        super().__init__()
        self._routes = routes

    async def for_gateway(self, gateway_id: str) -> OwnerRoutes | None:
        return self._routes


async def per_event(installs: int, events: int, repeats: int) -> float:
    """The best of `repeats` rounds of `events` events: CPU microseconds per event."""
    handlers = counter_handlers(installs)
    registry = PluginRegistry(handlers)
    routes = OwnerRoutes(
        OWNER,
        1,
        frozenset({GATEWAY}),
        frozenset({GatewayType.TELEGRAM_BOT}),
        tuple(
            InstallRoute(f"install-{n}", OWNER, f"plugin-{n}", h.slug, Plan.PRO, {}, InstallStatus.ACTIVE, None)
            for n, h in enumerate(handlers)
        ),
    )
    router = EventRouter(registry, Executor(registry, None, 10.0), OneOwner(routes))  # type: ignore[arg-type]
    event = TelegramMessageEvent(GATEWAY, 1, None)  # type: ignore[arg-type]  # the counters never read it
    best = float("inf")
    for _ in range(repeats):
        storages: Storages = {}
        runs: list[Run] = []  # a lane's batch of runs, let go once "recorded"
        succeeded = 0
        started = time.process_time()
        for n in range(events):
            origin = Origin(f"update:{GATEWAY}:{n}", RunTrigger.EVENT, EventType.TELEGRAM_MESSAGE, -1, n, replay=False)
            runs += await router.gateway_event(GATEWAY, event, origin, storages)
            if n % LANE_BATCH == LANE_BATCH - 1 or n == events - 1:
                succeeded += sum(run.outcome == RunOutcome.SUCCEEDED for run in runs)
                storages, runs = {}, []
        best = min(best, (time.process_time() - started) / events * 1e6)
        if succeeded != events * installs:
            raise SystemExit(f"{events * installs - succeeded} runs did not succeed")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installs", default="1,10", help="comma-separated install counts (default: 1,10)")
    parser.add_argument("--events", type=int, default=2_000, help="events a round (default: 2000)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best is printed (default: 7)")
    args = parser.parse_args()
    for installs in (int(n) for n in args.installs.split(",")):
        micros = asyncio.run(per_event(installs, args.events, args.repeats))
        print(
            f"event path, {installs:2} install{'s' if installs > 1 else ' '}: {micros:6.1f} µs CPU per event "
            f"(best of {args.repeats} × {args.events} events)"
        )


if __name__ == "__main__":
    main()
