"""python -m app: serve, worker, migrate, makemigrations, create-user, users, tokens, analytics, export-schema, demo.

A mistake of the person running it (a bad setting, an unreachable database, a port in use, an
unknown user) is one line on stderr starting with `error:` and a non-zero exit; `--debug` (or
LOG_LEVEL=DEBUG) prints the traceback behind it. Commands that need the schema apply pending
migrations first, as `serve` does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

from app.db import Database, MigrationFailed, failure_cause
from app.settings import SettingError, Settings

log = logging.getLogger("app")

SETTINGS_HELP = """\
Settings are read from environment variables: DATABASE_URL, BROADCAST_URL, PUBLIC_URL, HOST, PORT,
LOG_LEVEL, PLAN_LIMIT_FREE/PRO/BUSINESS and more. README.md's "Configuration" table lists every one,
with its default. `python -m app COMMAND --help` shows a command's options and their defaults."""

DEBUG_HELP = "print the traceback behind an error, and log at DEBUG (as LOG_LEVEL=DEBUG does)"
CREATE_DATABASE_HELP = (
    "create the database when it does not exist (a PostgreSQL database, a SQLite file's directory); "
    "without it a missing one is an error, so that a misspelt name is not created"
)
EXIT_ERROR = 1
EXIT_STARTUP_FAILURE = 3  # uvicorn's: the app did not start


class Failure(Exception):
    """A problem to report in one line (its text), without a traceback unless --debug."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    parents = [common]
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Plugboard: the GraphQL server of a Telegram-bot platform's plugin system.",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        parents=parents,
        help="apply pending migrations, then serve HTTP and GraphQL",
        description="Binds the address, applies pending migrations, then serves. Prints the app's and "
        "GraphiQL's addresses, the database and the pub/sub backend.",
    )
    serve.add_argument("--host", help="address to listen on (default: HOST from the environment, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT from the environment, else 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default: 1)")
    serve.add_argument("--create-database", action="store_true", help=CREATE_DATABASE_HELP)
    worker = commands.add_parser(
        "worker",
        parents=parents,
        help="process events and schedules without serving HTTP (pair with INBOX_CONCURRENCY=0 servers)",
        description="Applies pending migrations, then processes events and fires schedules until stopped.",
    )
    worker.add_argument("--create-database", action="store_true", help=CREATE_DATABASE_HELP)
    migrate = commands.add_parser(
        "migrate",
        parents=parents,
        help="apply pending migrations and say which",
        description="Applies pending migrations and prints their names (or that none was pending). "
        "Several processes migrating at once take turns: the others wait, then find nothing pending.",
    )
    migrate.add_argument("--create-database", action="store_true", help=CREATE_DATABASE_HELP)
    make = commands.add_parser(
        "makemigrations",
        parents=parents,
        help="write a migration for model changes",
        description='Writes a migration into migrations/ for model changes ("No changes detected" otherwise).',
    )
    make.add_argument("--name", help="name of the migration, e.g. add_gateway_region (default: tortoise's auto name)")

    from app.accounts.cli import add_account_parsers

    add_account_parsers(commands, parents)
    from app.analytics_cli import add_analytics_parser

    add_analytics_parser(commands, parents)
    commands.add_parser(
        "export-schema",
        parents=parents,
        help="print the GraphQL SDL",
        description="Prints the GraphQL SDL; schema/schema.graphql is this output.",
    )
    from app.demo.cli import add_demo_parser
    from app.secrets_cli import add_secrets_parser

    add_secrets_parser(commands, parents)

    add_demo_parser(commands, parents)
    return parser


@contextlib.asynccontextmanager
async def migrated_database(settings: Settings, quiet: bool = False) -> AsyncIterator[Database]:
    """The database, with pending migrations applied (named on stderr), bound."""
    db = Database(settings.database_url)
    await db.open()
    try:
        applied = await db.migrate()
        if applied and not quiet:
            print(f"Applied pending migrations first: {', '.join(applied)}", file=sys.stderr)
        with db.bound():
            yield db
    finally:
        await db.close()


async def _migrate(settings: Settings, create: bool) -> None:
    from app.secrets_cli import check_stored

    db = Database(settings.database_url)
    await db.open(create=create)
    try:
        applied = await db.migrate()
        await check_stored(db)
        existing = await db.applied_migrations()
    finally:
        await db.close()
    print(f"Database: {settings.database_shown}")
    for name in applied:
        print(f"Applied {name}")
    if not applied:
        latest = existing[-1] if existing else "none"
        print(f"No pending migrations: the database is up to date (latest: {latest}).")


async def _makemigrations(settings: Settings, name: str | None) -> None:
    async with migrated_database(settings) as db:
        paths = await db.make_migrations(name)
    print("\n".join(f"Created {path}" for path in paths) or "No changes detected")


async def _account_command(args: argparse.Namespace, settings: Settings) -> str | None:
    from app.accounts.cli import run_account_command

    async with migrated_database(settings):
        return await run_account_command(args, settings)


async def _analytics_command(settings: Settings, telegram_user_id: str) -> str:
    from app.analytics_cli import parse_user_id, run_analytics_command

    try:
        user_id = parse_user_id(telegram_user_id)  # before the database: a bad id touches nothing
    except ValueError as exc:
        raise Failure(str(exc)) from None
    async with migrated_database(settings):
        return await run_analytics_command(user_id, settings.broadcast_url)


async def _apply_migrations_logged(settings: Settings, create: bool) -> None:
    from app.secrets_cli import check_stored

    db = Database(settings.database_url)
    await db.open(create=create)
    try:
        for name in await db.migrate():
            log.info("applied migration %s", name)
        await check_stored(db)  # a wrong SECRET_KEY stops start-up here
    finally:
        await db.close()


async def _work(settings: Settings, level: str, create: bool) -> None:
    """Processes events and fires schedules, serving no HTTP, until SIGINT or SIGTERM."""
    import logging.config
    import signal

    from app.logs import log_config
    from app.platform import Platform
    from app.serve import database_line, freeze_heap, pubsub_line

    logging.config.dictConfig(log_config(level))
    await _apply_migrations_logged(settings, create)
    platform = Platform(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await platform.start()
    freeze_heap()
    log.info(
        "worker started; database %s; pub/sub %s; telegram %s",
        database_line(settings),
        pubsub_line(settings),
        platform.registration.why,
    )
    try:
        await stop.wait()
    finally:
        await platform.stop()


def _serve(
    settings: Settings, host: str, port: int, workers: int, level: str, create: bool, key_line: str | None = None
) -> int:
    import logging.config

    from app.logs import log_config
    from app.serve import (
        CannotListen,
        listen,
        public_url_warning,
        run_uvicorn,
        shown_url,
        start_up_lines,
        telegram_delivery,
        with_public_url,
    )

    if workers < 1:
        raise Failure(f"--workers must be 1 or more, not {workers}")
    config = log_config(level)
    logging.config.dictConfig(config)
    try:
        sock = listen(host, port)  # before migrations: a port in use fails here, at once
    except CannotListen as exc:
        raise Failure(str(exc)) from exc
    with sock:
        public_url_set = bool((os.environ.get("PUBLIC_URL") or "").strip())
        settings, problem = with_public_url(settings, shown_url(host, sock.getsockname()[1]))
        delivery, why = telegram_delivery(settings, public_url_set)
        if warning := public_url_warning(delivery, problem):
            log.warning("%s", warning)
        asyncio.run(_apply_migrations_logged(settings, create))
        sock.listen(2048)  # uvicorn's backlog: from here a connection waits for the app instead of being refused
        lines = start_up_lines(settings, shown_url(host, sock.getsockname()[1]), why)
        print("\n".join(lines + ([key_line] if key_line else [])), flush=True)
        if workers > 1 and settings.broadcast_url.startswith("memory://"):
            log.warning(
                "BROADCAST_URL=memory:// with %d workers: a live subscription hears only changes made in its "
                "own worker. Set BROADCAST_URL=redis://… for subscriptions across workers.",
                workers,
            )
        started = run_uvicorn(settings, sock, workers, config)
    return 0 if started else EXIT_STARTUP_FAILURE


def run(args: argparse.Namespace, settings: Settings, debug: bool) -> int:
    level = "DEBUG" if debug else settings.log_level
    if args.command == "secrets" and args.secrets_command == "generate-key":
        from app.secrets_at_rest import generate_key

        print(generate_key())
        return 0
    if settings.uses_default_database and args.command != "export-schema":
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)  # DATA_DIR is ours to make
    from app.secrets_cli import prepare

    settings, key_line = prepare(settings, args.command)
    if args.command == "serve":
        host = args.host if args.host is not None else settings.host
        port = args.port if args.port is not None else settings.port
        if not 0 <= port <= 65535:
            raise Failure(f"--port must be 0 to 65535, not {port}")
        return _serve(settings, host, port, args.workers, level, args.create_database, key_line)
    if args.command == "worker":
        asyncio.run(_work(settings, level, args.create_database))
    elif args.command == "migrate":
        asyncio.run(_migrate(settings, args.create_database))
    elif args.command == "makemigrations":
        asyncio.run(_makemigrations(settings, args.name))
    elif args.command in ("create-user", "users", "tokens"):
        token = asyncio.run(_account_command(args, settings))
        if token is not None:
            print(token)
    elif args.command == "analytics":
        print(asyncio.run(_analytics_command(settings, args.telegram_user_id)))
    elif args.command == "secrets":
        from app.secrets_cli import rotate_command

        print(asyncio.run(rotate_command(settings, args.batch_size)))
    elif args.command == "export-schema":
        from app.graphql.schema import export_sdl

        print(export_sdl())
    return 0


def fail(message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"
    try:
        settings = Settings.from_env()
    except SettingError as exc:
        return fail(str(exc), debug)
    if args.command == "demo":
        from app.demo.cli import run_demo_command
        from app.demo.errors import DemoError

        try:
            return run_demo_command(args, settings)
        except DemoError as exc:
            return fail(str(exc), debug)
        except KeyboardInterrupt:
            return 130
    from app.errors import PlugboardError
    from app.secrets_cli import KeyProblem

    try:
        return run(args, settings, debug)
    except (Failure, MigrationFailed, KeyProblem) as exc:
        return fail(str(exc), debug)
    except PlugboardError as exc:
        return fail(exc.message, debug)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        cause = failure_cause(exc, settings.database_url)
        if cause is None:
            raise
        return fail(f"cannot use the database at DATABASE_URL={settings.database_shown}: {cause}", debug)


if __name__ == "__main__":
    sys.exit(main())
