"""The `demo` verb of `python -m app`: its options, and running it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

DEFAULT_RATE = 2.0
DEFAULT_HISTORY_DAYS = 14


def add_demo_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="serve with a simulated Telegram bot and live traffic; prints the address and a token"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--rate", type=float, default=DEFAULT_RATE, help="things happening a second, on average")
    demo.add_argument("--history-days", type=int, default=DEFAULT_HISTORY_DAYS, help="days of past activity to fill in")
    demo.add_argument("--database-url", help="default: a fresh SQLite database, removed when the demo stops")
    demo.add_argument("--seed", type=int, help="seed for the simulated traffic")


def run_demo_command(args: argparse.Namespace) -> int:
    from app.demo.run import DemoError, DemoOptions, run_demo

    options = DemoOptions(
        host=args.host, port=args.port, rate=max(args.rate, 0.05), history_days=max(args.history_days, 0),
        database_url=args.database_url, seed=args.seed,
    )
    try:
        asyncio.run(run_demo(options))
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
