"""A worker process like `python -m app worker`, whose plugins are `--plugins` small counters:
each adds 1 to its install's `messages` key (`ctx.storage.increment`) per message. With all of
them installed for one user, every event runs that many installs.

    DATABASE_URL=… .venv/bin/python -m bench.counter_worker --plugins 10

Settings come from the environment, as for `python -m app worker`; the database must be migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from app.gateways.models import GatewayType
from app.platform import Platform
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
)
from app.serve import freeze_heap
from app.settings import Settings

KEY = "messages"


class CounterPlugin(PluginHandler):
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        await ctx.storage.increment(KEY)
        return None


def slug(n: int) -> str:
    return f"bench-counter-{n}"


def counter_handlers(count: int) -> list[PluginHandler]:
    """`count` counter plugins with distinct slugs (a definition is a class attribute)."""
    handlers: list[PluginHandler] = []
    for n in range(count):
        definition = PluginDefinition(
            slug=slug(n),
            name=f"Bench counter {n}",
            description="Counts messages (benchmark)",
            required_gateways=(GatewayType.TELEGRAM_BOT,),
        )
        handlers.append(type(f"CounterPlugin{n}", (CounterPlugin,), {"definition": definition})())
    return handlers


async def work(settings: Settings, plugins: int) -> None:
    platform = Platform(settings, handlers=counter_handlers(plugins))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await platform.start()
    freeze_heap()  # as `python -m app worker` does
    try:
        await stop.wait()
    finally:
        await platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugins", type=int, default=10)
    args = parser.parse_args()
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(work(settings, args.plugins))


if __name__ == "__main__":
    main()
