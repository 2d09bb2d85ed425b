"""What every answer to hostile input must satisfy, and a snapshot of what a refused call must not change."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.telegram import FakeTelegram
from tests.support.live import LiveApp

# The tables a client's call can change: users, tokens, catalog, installs and their configs,
# plugin storage, gateways, the audit log and the event inbox.
SNAPSHOT_TABLES = (
    "users",
    "api_tokens",
    "plugins",
    "user_plugins",
    "plugin_storage",
    "gateways",
    "audit_log",
    "gateway_events",
)


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """Parses JSON as a browser would: NaN, Infinity and -Infinity are not JSON."""
    return json.loads(text, parse_constant=_refuse_constant)


def graphql_error_problems(errors: Any) -> list[str]:
    """Errors that show a server fault: no code, or INTERNAL_SERVER_ERROR."""
    if errors is None:
        return []
    if not isinstance(errors, list):
        return [f"errors is not a list: {errors!r:.200}"]
    problems = []
    for error in errors:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        if code is None:
            problems.append(f"error without extensions.code: {error!r:.300}")
        elif code == "INTERNAL_SERVER_ERROR":
            problems.append(f"INTERNAL_SERVER_ERROR: {error!r:.300}")
    return problems


def graphql_http_problems(status: int, content_type: str, body: bytes) -> tuple[list[str], Any]:
    """What is wrong with one GraphQL answer over HTTP, and its parsed JSON body (None when not JSON)."""
    problems: list[str] = []
    if status >= 500:
        problems.append(f"status {status}: {body[:300]!r}")
    parsed = None
    if "json" in content_type:
        try:
            parsed = strict_json(body)
        except ValueError as exc:
            problems.append(f"the body is not strict JSON ({exc}): {body[:300]!r}")
    elif status == 200:
        problems.append(f"200 with content type {content_type!r}: {body[:200]!r}")
    if isinstance(parsed, dict) and status != 413:  # 413 is the body limit, before GraphQL
        problems.extend(graphql_error_problems(parsed.get("errors")))
    return problems, parsed


def is_refused(status: int, parsed: Any) -> bool:
    """A call the server did not carry out in full: any error status, or any GraphQL error."""
    return status >= 400 or not isinstance(parsed, dict) or bool(parsed.get("errors"))


Snapshot = dict[str, Any]


# Columns any authenticated call may touch without changing anything a user asked for: a token's
# coarse last-use time (written at most once a minute); and the background loops' leases, which a
# process renews whoever calls (the gateway monitor's, the pollers').
BOOKKEEPING = {"api_tokens": {"last_used_at"}, "leases": {"until"}}


def without_bookkeeping(table: str, row: dict[str, Any]) -> dict[str, Any]:
    ignored = BOOKKEEPING.get(table, set())
    return {name: value for name, value in row.items() if name not in ignored}


async def snapshot(app: LiveApp, telegram: FakeTelegram | None = None) -> Snapshot:
    """Every row of the tables a call can change, and the webhooks the fake Telegram holds."""
    rows: Snapshot = {}
    with app.db() as ctx:
        conn = ctx.db()
        for table in SNAPSHOT_TABLES:
            found = await conn.execute_query_dict(f'SELECT * FROM "{table}" ORDER BY id')
            rows[table] = [without_bookkeeping(table, row) for row in found]
    if telegram is not None:
        rows["telegram webhooks"] = sorted(
            (bot.bot_id, bot.webhook_url, bot.secret_token, tuple(bot.allowed_updates or ()))
            for bot in telegram.bots.values()
        )
    return rows


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """The tables whose rows differ, each with a short account of how."""
    changed = []
    for table in before.keys() | after.keys():
        old, new = before.get(table), after.get(table)
        if old != new:
            old_rows, new_rows = old or [], new or []
            added = [r for r in new_rows if r not in old_rows]
            removed = [r for r in old_rows if r not in new_rows]
            changed.append(f"{table}: added {str(added)[:400]}, removed {str(removed)[:400]}")
    return sorted(changed)
