"""The `demo` verb of `python -m app`: its options, their checks, and running it.

A mistake (an option out of range, a database that cannot be used, an address that cannot be
listened on) is a DemoError: one line, as `serve` gives, with the traceback only under --debug.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from app.demo.errors import DemoError

if TYPE_CHECKING:
    from app.settings import Settings

DEFAULT_RATE = 0.2
MAX_RATE = 20.0
DEFAULT_HISTORY_DAYS = 14
MAX_HISTORY_DAYS = 30  # Channel Analytics keeps 30 days by default
MAX_PAST_THINGS = 1_000_000  # the past is made before the demo starts: bound the work


def add_demo_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        parents=parents,
        help="serve with a simulated Telegram bot and live traffic; prints the address and a token",
        description="Serves Plugboard with a simulated Telegram bot, fills in past activity and keeps "
        "posting live updates through the real webhook, at one pace: --rate things a second on an "
        "average weekday, busier in the evening, quiet at night, quieter at weekends, in the day of its "
        "community in Delhi (Asia/Kolkata, the time zone its Channel Analytics shows). Prints the "
        "address and an API token. Ctrl+C stops it.",
    )
    demo.add_argument("--host", help="address to listen on (default: HOST from the environment, else 127.0.0.1)")
    demo.add_argument("--port", type=int, help="port to listen on (default: PORT from the environment, else 8000)")
    demo.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"how busy the community is: things happening a second, averaged over a weekday; the past "
        f"and the live traffic follow the same daily pattern (default: {DEFAULT_RATE:g}, about "
        f"{DEFAULT_RATE * 86400:,.0f} a day; more than 0, at most {MAX_RATE:g})",
    )
    demo.add_argument(
        "--history-days",
        type=int,
        default=DEFAULT_HISTORY_DAYS,
        help=f"days before today to fill in, and today until now (default: {DEFAULT_HISTORY_DAYS}; 0 for no "
        f"past, at most {MAX_HISTORY_DAYS})",
    )
    demo.add_argument(
        "--database-url",
        help="sqlite://PATH or postgres://USER@HOST:PORT/NAME (default: a fresh SQLite database in a "
        "temporary directory, removed when the demo stops)",
    )
    demo.add_argument(
        "--seed", type=int, help="seed for the simulated traffic, to repeat it (default: a new one each run)"
    )


def check_options(args: argparse.Namespace, settings: Settings) -> None:
    """Raises DemoError for an option the demo cannot run with, before anything starts."""
    from app.settings import SettingError, database_url_problem

    if args.port is not None and not 0 <= args.port <= 65535:
        raise DemoError(f"--port must be 0 to 65535, not {args.port}")
    if not 0 < args.rate <= MAX_RATE:  # also refuses nan
        raise DemoError(f"--rate must be more than 0 and at most {MAX_RATE:g} things a second, not {args.rate:g}")
    if not 0 <= args.history_days <= MAX_HISTORY_DAYS:
        raise DemoError(f"--history-days must be 0 to {MAX_HISTORY_DAYS}, not {args.history_days}")
    past = args.rate * 86400 * (args.history_days + 1) if args.history_days else 0  # the days and today so far
    if past > MAX_PAST_THINGS:
        raise DemoError(
            f"--rate {args.rate:g} with --history-days {args.history_days} means about {past:,.0f} past updates to make; "
            f"at most {MAX_PAST_THINGS:,} are made before the demo starts: lower --rate or --history-days"
        )
    if args.database_url is not None and (problem := database_url_problem(args.database_url)):
        raise DemoError(str(SettingError("--database-url", args.database_url, problem)))


def run_demo_command(args: argparse.Namespace, settings: Settings) -> int:
    from app.db import failure_cause
    from app.demo.run import DemoOptions, run_demo
    from app.settings import without_password

    check_options(args, settings)
    options = DemoOptions(
        host=args.host if args.host is not None else settings.host,
        port=args.port if args.port is not None else settings.port,
        rate=args.rate,
        history_days=args.history_days,
        database_url=args.database_url,
        seed=args.seed,
    )
    try:
        asyncio.run(run_demo(options, settings))
    except DemoError:
        raise
    except Exception as exc:
        url = args.database_url or "sqlite://"
        cause = failure_cause(exc, url)
        if cause is None:
            raise
        raise DemoError(f"cannot use the database at --database-url={without_password(url)}: {cause}") from exc
    return 0
