"""`python -m app analytics forget-user TELEGRAM_USER_ID`: a community member asks to be forgotten.

Removes that person's rows from every install's analytics (app/analytics/personal.py lists the
tables), and says how many went. The id is checked before anything is touched.
"""

from __future__ import annotations

import argparse

from app.analytics.personal import forget_user
from app.inputs import INT64_MAX, is_ascii_digits


def add_analytics_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    analytics = commands.add_parser(
        "analytics",
        parents=parents,
        help="Channel Analytics: forget one person's data",
        description="Operator verbs of Channel Analytics.",
    )
    actions = analytics.add_subparsers(dest="analytics_command", required=True, metavar="ACTION")
    forget = actions.add_parser(
        "forget-user",
        parents=parents,
        help="remove one Telegram user's rows from every install's analytics",
        description="Removes every row that holds this Telegram user id from every install's analytics (seen "
        "users, users per day, posters' counts and names), in one transaction, and prints how many went. "
        "Counters without ids (messages, a day's number of users) stay.",
    )
    forget.add_argument(
        "telegram_user_id", metavar="TELEGRAM_USER_ID", help="the person's Telegram user id, e.g. 123456789"
    )


def parse_user_id(text: str) -> int:
    """A Telegram user id: a positive whole number in ASCII digits that a database can hold
    (ValueError, in one line for the CLI's `error:`, otherwise)."""
    value = text.strip()
    if not is_ascii_digits(value) or len(value) > 19 or not 0 < int(value) <= INT64_MAX:
        raise ValueError(f"TELEGRAM_USER_ID must be a Telegram user id (a positive whole number), not {text!r}")
    return int(value)


async def run_analytics_command(user_id: int) -> str:
    removed = await forget_user(user_id)
    total = sum(removed.values())
    each = ", ".join(f"{table}: {count}" for table, count in removed.items())
    return f"Removed {total} rows of Telegram user {user_id} from every install ({each})."
