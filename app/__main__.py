"""python -m app: serve, worker, migrate, makemigrations, create-user, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.accounts.models import Plan
from app.db import Database
from app.settings import Settings


async def _migrate(settings: Settings) -> None:
    db = Database(settings.database_url)
    await db.open(create=True)
    try:
        await db.migrate()
    finally:
        await db.close()


async def _makemigrations(settings: Settings, name: str | None) -> None:
    db = Database(settings.database_url)
    await db.open(create=True)
    try:
        await db.migrate()
        paths = await db.make_migrations(name)
    finally:
        await db.close()
    print("\n".join(f"Created {path}" for path in paths) or "No changes detected")


async def _create_user(settings: Settings, email: str, plan: Plan) -> str:
    from app.accounts.service import create_user

    db = Database(settings.database_url)
    await db.open()
    try:
        with db.bound():
            user, token = await create_user(email, plan)
    finally:
        await db.close()
    print(f"Created user {user.email} ({user.plan.value}), id {user.id}. API token:")
    return token


async def _work(settings: Settings) -> None:
    """Processes events and fires schedules, serving no HTTP, until SIGINT or SIGTERM."""
    import logging.config
    import signal

    from app.logs import log_config
    from app.platform import Platform

    logging.config.dictConfig(log_config())
    await _migrate(settings)
    platform = Platform(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await platform.start()
    logging.getLogger("app").info("worker started")
    try:
        await stop.wait()
    finally:
        await platform.stop()


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import logging.config

    import uvicorn

    from app.gateways.public_url import public_url_problem
    from app.logs import log_config

    logging.config.dictConfig(log_config())
    if problem := public_url_problem(settings.public_url):
        logging.getLogger("app").warning("%s Until then, connecting a bot fails.", problem)
    asyncio.run(_migrate(settings))
    shown = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    print(f"Plugboard: {shown}/  (GraphiQL: {shown}/graphql)", flush=True)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_config=log_config(),
        access_log=settings.access_log,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Plugboard server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply pending migrations, then serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    commands.add_parser(
        "worker", help="process events and schedules without serving HTTP (pair with INBOX_CONCURRENCY=0 servers)"
    )
    commands.add_parser("migrate", help="apply pending migrations")
    make = commands.add_parser("makemigrations", help="write a migration for model changes")
    make.add_argument("--name", help="name of the migration, e.g. add_gateway_region")
    create = commands.add_parser("create-user", help="create a user and print an API token (last line)")
    create.add_argument("email")
    create.add_argument("--plan", choices=[p.value for p in Plan], default=Plan.FREE.value)
    commands.add_parser("export-schema", help="print the GraphQL SDL")
    from app.demo.cli import add_demo_parser, run_demo_command

    add_demo_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo_command(args)

    settings = Settings.from_env()
    if args.command == "serve":
        _serve(settings, args.host, args.port, args.workers)
    elif args.command == "worker":
        asyncio.run(_work(settings))
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "makemigrations":
        asyncio.run(_makemigrations(settings, args.name))
    elif args.command == "create-user":
        from app.errors import PlugboardError

        try:
            token = asyncio.run(_create_user(settings, args.email, Plan(args.plan)))
        except PlugboardError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        print(token)
    elif args.command == "export-schema":
        from app.graphql.schema import export_sdl

        print(export_sdl())
    return 0


if __name__ == "__main__":
    sys.exit(main())
