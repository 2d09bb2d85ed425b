"""An install's state: the one place it changes. Each change is a conditional write (from the
state it was read in), an audit event in its user's log, and a new routing version, so every
process routes by the new state from its next claim on.

    DISABLED             its user turned it off
    NEEDS_CONFIG         its config does not validate against the plugin's version
    WAITING_FOR_GATEWAY  a gateway type the plugin needs is not connected and working (a bot whose
                         token Telegram refused does not count; the reason then says to reconnect it)
    FAILING              the circuit breaker is open: events are skipped until the next probe
    ACTIVE               runs

Earlier rows win: a disabled install that also needs config is DISABLED, and shows NEEDS_CONFIG
once enabled again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise import timezone
from tortoise.expressions import F

from app.accounts.models import User
from app.audit import writes as audit
from app.plugins.models import InstallStatus, UserPlugin

DISABLED_REASON = "Turned off by its user"
RUNNING_STATES = (InstallStatus.ACTIVE, InstallStatus.FAILING)  # the states the router looks at


def waiting_reason(missing: Iterable[str], refused: Iterable[str] = ()) -> str:
    """Why an install waits: the gateway types it needs that are missing. `refused`: those of them
    whose connected gateway Telegram refused (TOKEN_REJECTED), which the user reconnects."""
    missing, refused = set(missing), set(refused) & set(missing)
    if refused and missing == {"TELEGRAM_BOT"}:
        return (
            "Waiting for the Telegram bot: Telegram refused its token (it was revoked in @BotFather, "
            "or the bot was deleted). Reconnect the bot with its new token and this plugin starts"
        )
    names = ", ".join(sorted(missing))
    if refused:
        return (
            f"Waiting for a gateway of type {names}: Telegram refused the token of the connected "
            f"{', '.join(sorted(refused))}. Reconnect it and this plugin starts"
        )
    if names == "TELEGRAM_BOT":
        return "Waiting for a Telegram bot: connect one and this plugin starts"
    return f"Waiting for a gateway of type {names}: connect one and this plugin starts"


def missing_gateways(required: Iterable[str], active_types: Iterable[str]) -> set[str]:
    return set(required) - set(active_types)


@dataclass(frozen=True)
class Target:
    status: InstallStatus
    reason: str | None = None


def settled(enabled: bool, config_problem: str | None, missing: set[str], refused: Iterable[str] = ()) -> Target:
    """The state an install settles in when nothing is failing (the breaker closed). `refused`: the
    missing gateway types whose connected gateway Telegram refused (see waiting_reason)."""
    if not enabled:
        return Target(InstallStatus.DISABLED, DISABLED_REASON)
    if config_problem is not None:
        return Target(InstallStatus.NEEDS_CONFIG, config_problem)
    if missing:
        return Target(InstallStatus.WAITING_FOR_GATEWAY, waiting_reason(missing, refused))
    return Target(InstallStatus.ACTIVE)


async def routing_changed(user_ids: Iterable[str]) -> None:
    """Tells every process that routes events to have fresh routes for these users."""
    ids = sorted(set(user_ids))
    if ids:
        await User.filter(id__in=ids).update(routing_version=F("routing_version") + 1)


async def change(
    install: UserPlugin,
    target: Target,
    why: str,
    slug: str,
    **fields: Any,
) -> bool:
    """Moves `install` from the status it was read with to `target` (with any other `fields`),
    unless another change got there first; records the change and the new routing version.
    Call inside a transaction. Returns whether it changed."""
    now = fields.pop("updated_at", None) or timezone.now()
    if target.status != InstallStatus.FAILING:
        fields.setdefault("consecutive_failures", 0)
        fields.setdefault("probe_at", None)
        fields.setdefault("backoff_seconds", 0)
    changed = await UserPlugin.filter(id=install.id, status=install.status).update(
        status=target.status, status_reason=target.reason, updated_at=now, **fields
    )
    if not changed:
        return False
    await audit.record_for(
        install.user_id,
        "plugin.status",
        "plugin",
        install.plugin_id,
        {"slug": slug, "from": install.status.value, "to": target.status.value, "reason": target.reason, "why": why},
    )
    await routing_changed([install.user_id])
    install.status, install.status_reason, install.updated_at = target.status, target.reason, now
    for name, value in fields.items():
        setattr(install, name, value)
    return True


async def keep_failing(install: UserPlugin, reason: str, **fields: Any) -> bool:
    """A FAILING install stays FAILING with a new reason and `fields` (a failed trial: its next
    probe is later), unless it left FAILING meanwhile. Call inside a transaction."""
    changed = await UserPlugin.filter(id=install.id, status=InstallStatus.FAILING).update(
        status_reason=reason, **fields
    )
    if changed:
        await routing_changed([install.user_id])
    return bool(changed)
