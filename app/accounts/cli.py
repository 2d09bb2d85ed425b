"""The operator's verbs for accounts: `create-user`, `users list|set-plan|delete`, `tokens create|list|revoke`.

Each runs against an open, migrated database and prints for a person. A token appears once, on
the last line of `create-user` and `tokens create`; nothing else ever prints one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.accounts import sessions
from app.accounts.models import ApiToken, Plan
from app.accounts.service import AccountService, PlanChange, UserSummary
from app.accounts.tokens import MAX_EXPIRES_DAYS, TokenService
from app.clock import utcnow
from app.errors import BadUserInput
from app.settings import Settings
from app.user_deletion import Footprint, delete_user, footprint

PLANS = [p.value for p in Plan]
DEFAULT_TOKEN_NAME = "cli"


def add_account_parsers(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    create = commands.add_parser(
        "create-user",
        parents=parents,
        help="create a user and print an API token (last line)",
        description="Creates a user with a first API token. The token is the last line of the output, "
        "shown this once: only its hash is stored.",
    )
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--plan", choices=PLANS, default=Plan.FREE.value, help="the user's plan (default: free)")

    user_commands = commands.add_parser(
        "users",
        parents=parents,
        help="list users, change a user's plan, delete a user",
        description="Users: `users list`, `users set-plan EMAIL PLAN`, `users delete EMAIL`.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    user_commands.add_parser(
        "list",
        parents=parents,
        help="every user: email, plan, installed plugins, created",
        description="Lists every user, oldest first: email, plan, installed plugins, when created.",
    )
    set_plan = user_commands.add_parser(
        "set-plan",
        parents=parents,
        help="move a user to another plan",
        description="Moves a user to another plan at once. On a downgrade below their install count, "
        "the installs stay and new ones are refused until they are under the new limit.",
    )
    set_plan.add_argument("email", metavar="EMAIL")
    set_plan.add_argument("plan", choices=PLANS, metavar="PLAN", help=", ".join(PLANS))
    delete = user_commands.add_parser(
        "delete",
        parents=parents,
        help="delete a user and everything of theirs (asks first)",
        description="Deletes a user: uninstalls their plugins (their uninstall hooks run), disconnects their "
        "bots, deletes their tokens, data, analytics and audit log, and closes their open websockets in every "
        "process. Asks for confirmation (y/N) unless given --yes.",
    )
    delete.add_argument("email", metavar="EMAIL")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    token_commands = commands.add_parser(
        "tokens",
        parents=parents,
        help="create, list and revoke a user's API tokens",
        description="API tokens: `tokens create EMAIL`, `tokens list EMAIL`, `tokens revoke ID`.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    create_token = token_commands.add_parser(
        "create",
        parents=parents,
        help="create a token for a user; the token is the last line",
        description="Creates an API token for a user (a lost one cannot be recovered: make a new one and "
        "revoke the old). The token is the last line of the output, shown this once.",
    )
    create_token.add_argument("email", metavar="EMAIL")
    create_token.add_argument(
        "--name", default=DEFAULT_TOKEN_NAME, help=f"a label, 1 to 64 characters (default: {DEFAULT_TOKEN_NAME})"
    )
    create_token.add_argument(
        "--expires",
        type=int,
        metavar="DAYS",
        help=f"days until it stops working, 1 to {MAX_EXPIRES_DAYS} (default: never)",
    )
    list_tokens = token_commands.add_parser(
        "list",
        parents=parents,
        help="a user's tokens: id, name, created, last used, expires, status",
        description="Lists a user's tokens, newest first, revoked and expired ones included. "
        "Never the tokens themselves: only their hashes are stored.",
    )
    list_tokens.add_argument("email", metavar="EMAIL")
    revoke = token_commands.add_parser(
        "revoke",
        parents=parents,
        help="revoke a token by its id; it stops working at once",
        description="Revokes a token by the id `tokens list` shows. It stops working at once, in every process "
        "(within a second where BROADCAST_URL does not reach them).",
    )
    revoke.add_argument("id", metavar="ID", help="the token's id, as `tokens list` shows it")


async def run_account_command(args: argparse.Namespace, settings: Settings) -> str | None:
    """Runs the command; returns a token to print as the last line, if the command made one."""
    # The services these need; `users delete` builds the whole Platform.
    users, tokens = AccountService(), TokenService()
    if args.command == "create-user":
        user, token = await users.create_user(args.email, Plan(args.plan))
        print(
            f"Created user {shown(user.email)} ({user.plan.value} plan), id {user.id}. Their API token, shown this once:"
        )
        return token
    if args.command == "users" and args.action == "list":
        print_users(await users.list_users(), settings)
    elif args.command == "users" and args.action == "set-plan":
        print_plan_change(await users.set_plan(args.email, Plan(args.plan), via="cli"), settings)
    elif args.command == "users" and args.action == "delete":
        await delete_user_command(users, args.email, args.yes, settings)
    elif args.command == "tokens" and args.action == "create":
        user = await users.find_user(args.email)
        row, token = await tokens.create_token(user.id, args.name, args.expires, via="cli")
        expires = f"expires {when(row.expires_at)}" if row.expires_at else "never expires"
        print(
            f'Created token {row.id} ("{shown(row.name)}") for {shown(user.email)}; it {expires}. The token, shown this once:'
        )
        return token
    elif args.command == "tokens" and args.action == "list":
        user = await users.find_user(args.email)
        print_tokens(user.email, await tokens.list_tokens(user.id, valid_only=False))
    elif args.command == "tokens" and args.action == "revoke":
        revoked = await tokens.revoke_token(args.id, via="cli")
        owner = await revoked.token.user
        name = f'"{shown(revoked.token.name)}" of {shown(owner.email)}'
        if revoked.already:
            print(f"Token {revoked.token.id} ({name}) was revoked already, at {when(revoked.token.revoked_at)}.")
        else:
            await sessions.announce_to(settings.broadcast_url, [revoked.token.id])
            print(f"Revoked token {revoked.token.id} ({name}). It stops working now, in every process.")
    return None


async def delete_user_command(users: AccountService, email: str, yes: bool, settings: Settings) -> None:
    found = await footprint(users, email)
    if not yes:
        confirm_deletion(found)
    from app.platform import Platform  # its services: uninstall hooks, and bots' webhooks deleted

    platform = Platform(settings)
    try:
        gone = await delete_user(found.email, platform.accounts, platform.plugins, platform.gateways)
    finally:
        await platform.gateways.close()
        await platform.subscriptions.close()
    await sessions.announce_to(settings.broadcast_url, gone.tokens, [gone.user_id])
    print(
        f"Deleted {shown(gone.email)} with {what_goes(gone)}: plugins uninstalled, bots disconnected, "
        "data and analytics deleted. Their open websockets close now, in every process."
    )


def what_goes(found: Footprint) -> str:
    """What a deletion takes, as "N plugins (a, b), N bots, N tokens"."""
    plugins = plural(len(found.plugins), "plugin") + (
        f" ({', '.join(shown(p) for p in found.plugins)})" if found.plugins else ""
    )
    return f"{plugins}, {plural(found.bots, 'bot')}, {plural(len(found.tokens), 'token')}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def confirm_deletion(found: Footprint) -> None:
    """Asks y/N on a terminal; refuses, in one line, where no one can answer."""
    if not sys.stdin.isatty():
        raise BadUserInput(
            f"users delete {shown(found.email)} asks for confirmation: run it in a terminal, or add --yes"
        )
    print(
        f"{shown(found.email)} has {what_goes(found)}: uninstalled, disconnected and deleted with all their data and analytics."
    )
    try:
        answer = input(f"Delete {shown(found.email)}? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise BadUserInput("Not confirmed: nothing was deleted")


def cli_command() -> str:
    """This CLI as it can be run again: its interpreter (the project's .venv/bin/python, which has
    the dependencies a system python3 lacks), relative to the current folder when inside it."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"{python} -m app"


def print_users(rows: Sequence[UserSummary], settings: Settings) -> None:
    if not rows:
        print(f"No users yet. Create one: {cli_command()} create-user EMAIL [--plan free|pro|business]")
        return
    table = []
    for row in rows:
        limit = settings.plan_limit(row.plan.value)
        installs = str(row.installs) if limit is None or row.installs <= limit else f"{row.installs} (limit {limit})"
        table.append([shown(row.email), row.plan.value, installs, when(row.created_at)])
    print_table(["EMAIL", "PLAN", "INSTALLS", "CREATED"], table)


def print_plan_change(change: PlanChange, settings: Settings) -> None:
    email = shown(change.user.email)
    if not change.changed:
        print(f"{email} is on the {change.new.value} plan already; nothing changed.")
        return
    limit = settings.plan_limit(change.new.value)
    allowed = "no limit" if limit is None else f"{limit} plugin{'s' if limit != 1 else ''} allowed"
    print(f"{email}: {change.old.value} -> {change.new.value} plan ({allowed}, {change.installs} installed).")
    if limit is not None and change.installs > limit:
        print(
            f"Over the limit: their {change.installs} installs stay and keep working, but installing more is "
            f"refused until they have fewer than {limit} (uninstall {change.installs - limit + 1} or more)."
        )


def print_tokens(email: str, rows: Sequence[ApiToken]) -> None:
    if not rows:
        print(f"{shown(email)} has no tokens. Create one: {cli_command()} tokens create {shown(email)}")
        return
    now = utcnow()
    table = [
        [
            row.id,
            shown(row.name),
            when(row.created_at),
            when(row.last_used_at) if row.last_used_at else "never",
            when(row.expires_at) if row.expires_at else "never",
            status(row, now),
        ]
        for row in rows
    ]
    print_table(["ID", "NAME", "CREATED", "LAST USED", "EXPIRES", "STATUS"], table)


def status(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return f"revoked {when(token.revoked_at)}"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "valid"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def when(moment: datetime | None) -> str:
    """A time as the CLI prints it: UTC, to the minute."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def shown(text: str) -> str:
    """`text` safe for a terminal: control characters (escape sequences among them) escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
