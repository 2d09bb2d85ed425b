"""What a user's installs need of their gateways, and what follows when the gateways change: the
update types to ask Telegram for, and the states installs take when a gateway comes or goes. The
gateways' side (app/gateways/) is told these as callbacks, built by app/platform.py."""

from __future__ import annotations

from typing import cast

from tortoise.transactions import in_transaction

from app.gateways.models import Gateway, GatewayStatus
from app.gateways.status import WORKING_STATUSES
from app.plugins import states
from app.plugins.models import InstallStatus, UserPlugin
from app.plugins.registry import PluginRegistry, needed_update_types

WORKING = frozenset(status.value for status in WORKING_STATUSES)


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


async def gateway_types(user_id: str) -> tuple[set[str], set[str]]:
    """The types of the user's connected gateways that work (WORKING_STATUSES), and the types whose
    connected gateways Telegram all refused (TOKEN_REJECTED: the user reconnects them)."""
    rows = await Gateway.filter(owner_id=user_id, is_active=True).distinct().values_list("type", "status")
    working = {_text(kind) for kind, status in rows if _text(status) in WORKING}
    refused = {_text(kind) for kind, status in rows if _text(status) == GatewayStatus.TOKEN_REJECTED.value}
    return working, refused - working


async def active_gateway_types(user_id: str) -> set[str]:
    """The types of the user's gateways that are connected and working: what installs may run on."""
    return (await gateway_types(user_id))[0]


async def missing_gateways_of(user_id: str, required: list[str]) -> tuple[set[str], set[str]]:
    """The gateway types in `required` the user has no working gateway of, and those of them whose
    connected gateway Telegram refused (for states.settled's reason)."""
    working, refused = await gateway_types(user_id)
    missing = states.missing_gateways(required, working)
    return missing, refused & missing


async def update_types_for(registry: PluginRegistry, user_id: str) -> list[str]:
    """The Telegram update types the user's running installs handle."""
    slugs = cast(
        "list[str]",  # tortoise types a flat values_list as tuples
        await UserPlugin.filter(user_id=user_id, status__in=states.RUNNING_STATES, plugin__is_active=True).values_list(
            "plugin__slug", flat=True
        ),
    )
    return needed_update_types(h for h in (registry.get(slug) for slug in slugs) if h is not None)


async def gateways_changed(user_id: str) -> None:
    """After the user's gateways changed (connected, disconnected, or working again or not, as a
    bot whose token Telegram refused): installs that wait for a gateway start, and running ones
    (a FAILING one too: waiting ranks first) whose gateway went away wait for one, with the reason.
    Called in the transaction that changes the gateways."""
    working, refused = await gateway_types(user_id)
    installs = await UserPlugin.filter(
        user_id=user_id,
        status__in=(InstallStatus.ACTIVE, InstallStatus.FAILING, InstallStatus.WAITING_FOR_GATEWAY),
    ).select_related("plugin")
    async with in_transaction():
        for install in installs:
            missing = states.missing_gateways(install.plugin.required_gateways, working)
            if install.status == InstallStatus.FAILING and not missing:
                continue  # its breaker stays as it is
            target = states.settled(True, None, missing, refused & missing)
            if (target.status, target.reason) != (install.status, install.status_reason):
                await states.change(install, target, "gateways changed", install.plugin.slug)
        await states.routing_changed([user_id])
