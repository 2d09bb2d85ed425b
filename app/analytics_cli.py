"""`python -m app analytics forget-user TELEGRAM_USER_ID`: a community member asks to be forgotten.

Removes that person's rows from every install's analytics (app/analytics/personal.py lists the
tables), says how many went, and tells the open summaries of the installs it touched to read
again (over a redis:// BROADCAST_URL; on memory:// there is no server to tell, and they show it at
their next change). The id is checked before anything is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterable
from typing import cast
from urllib.parse import urlsplit

from app import live
from app.analytics.personal import forget_user
from app.inputs import INT64_MAX, is_ascii_digits
from app.plugins.models import UserPlugin

log = logging.getLogger(__name__)
SLUG = "analytics"


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


async def run_analytics_command(user_id: int, broadcast_url: str) -> str:
    forgotten = await forget_user(user_id)
    if forgotten.installs:
        owners = cast("list[str]", await UserPlugin.filter(id__in=forgotten.installs).values_list("user_id", flat=True))
        await announce(broadcast_url, owners)
    total = sum(forgotten.removed.values())
    each = ", ".join(f"{table}: {count}" for table, count in forgotten.removed.items())
    return f"Removed {total} rows of Telegram user {user_id} from every install ({each})."


async def announce(broadcast_url: str, owners: Iterable[str]) -> None:
    """The "changed" notices a plugin run would send, so that open summaries read again."""
    if urlsplit(broadcast_url).scheme not in ("redis", "rediss"):
        return
    from app.pubsub import RedisPubSubBackend

    backend = RedisPubSubBackend(broadcast_url)  # publishes without listening: nothing to connect
    try:
        for owner in sorted(set(owners)):
            for topic in ("updated", "pruned"):  # every chat's summaries, and each one chat's
                await backend.publish(live.channel(str(owner), SLUG, topic), "changed")
    except Exception as exc:  # noqa: BLE001 - the rows are gone; the summaries show it at their next change
        log.warning("analytics change not published (%s)", type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            await backend.disconnect()
