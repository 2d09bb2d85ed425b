"""Which installs an event goes to, cached per gateway owner.

A process keeps each owner's routes (their connected, working gateways and their installs that run) with the
owner's `routing_version`. Every change that affects routing raises that version in the same
transaction (app/plugins/states.py), and the dispatcher compares versions once per claimed batch:
one small query, however many events the batch holds, and correct across processes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.accounts.models import Plan, User
from app.gateways.models import Gateway, GatewayType
from app.gateways.status import WORKING_STATUSES
from app.plugins.models import InstallStatus, UserPlugin
from app.plugins.states import RUNNING_STATES

MAX_OWNERS = 10_000
MAX_GATEWAYS = 50_000


@dataclass(frozen=True)
class InstallRoute:
    id: str
    user_id: str
    plugin_id: str
    slug: str
    plan: Plan
    config: dict[str, Any]
    status: InstallStatus
    probe_at: datetime | None

    @classmethod
    def of(cls, install: UserPlugin, plan: Plan) -> InstallRoute:
        """The route of one install, loaded with its plugin (`select_related("plugin")`)."""
        return cls(
            install.id,
            install.user_id,
            install.plugin_id,
            install.plugin.slug,
            plan,
            install.config,
            install.status,
            install.probe_at,
        )

    def open_at(self, now: datetime) -> bool:
        """Whether its circuit breaker keeps it from running now (FAILING, before the next probe)."""
        return self.status == InstallStatus.FAILING and (self.probe_at is None or now < self.probe_at)


@dataclass(frozen=True)
class OwnerRoutes:
    owner_id: str
    version: int
    active_gateways: frozenset[str]
    gateway_types: frozenset[GatewayType]
    installs: tuple[InstallRoute, ...]


async def load_installs(**filters: Any) -> list[InstallRoute]:
    """The running installs (ACTIVE or FAILING) of active plugins that match `filters`."""
    rows = await UserPlugin.filter(status__in=RUNNING_STATES, plugin__is_active=True, **filters).values(
        "id", "user_id", "plugin_id", "config", "status", "probe_at", "plugin__slug", "user__plan"
    )
    return [
        InstallRoute(
            id=row["id"],
            user_id=row["user_id"],
            plugin_id=row["plugin_id"],
            slug=row["plugin__slug"],
            plan=Plan(row["user__plan"]),
            config=row["config"],
            status=InstallStatus(row["status"]),
            probe_at=row["probe_at"],
        )
        for row in sorted(rows, key=lambda r: r["id"])
    ]


async def load_owners(owner_ids: Collection[str]) -> dict[str, OwnerRoutes]:
    """The routes of these owners (those that exist), in three queries however many they are."""
    if not owner_ids:
        return {}
    # The versions first: routes read after them are at least as new, so a change in between only
    # costs a second load, never a stale route kept.
    versions = dict(await User.filter(id__in=list(owner_ids)).values_list("id", "routing_version"))
    if not versions:
        return {}
    # Only gateways that work route: a bot whose token Telegram refused runs no plugin (whatever a
    # webhook took in before every process knew is dropped here).
    gateways: dict[str, list[tuple[str, str]]] = {owner_id: [] for owner_id in versions}
    for gateway_id, owner_id, kind in await Gateway.filter(
        owner_id__in=list(versions), is_active=True, status__in=WORKING_STATUSES
    ).values_list("id", "owner_id", "type"):
        gateways[owner_id].append((gateway_id, kind))
    installs: dict[str, list[InstallRoute]] = {owner_id: [] for owner_id in versions}
    for install in await load_installs(user_id__in=list(versions)):
        installs[install.user_id].append(install)
    return {
        owner_id: OwnerRoutes(
            owner_id=owner_id,
            version=version,
            active_gateways=frozenset(gateway_id for gateway_id, _ in gateways[owner_id]),
            gateway_types=frozenset(GatewayType(kind) for _, kind in gateways[owner_id]),
            installs=tuple(installs[owner_id]),
        )
        for owner_id, version in versions.items()
    }


class RoutingCache:
    def __init__(self, max_owners: int = MAX_OWNERS) -> None:
        self.max_owners = max_owners
        self._owner_of: OrderedDict[str, str] = OrderedDict()  # gateway -> owner (never changes)
        self._owners: OrderedDict[str, OwnerRoutes] = OrderedDict()

    async def refresh(self, gateway_ids: Iterable[str]) -> None:
        """Brings the routes of these gateways' owners up to date: one query when none changed."""
        wanted = set(gateway_ids)
        unknown = [g for g in wanted if g not in self._owner_of]
        if unknown:
            for gateway_id, owner_id in await Gateway.filter(id__in=unknown).values_list("id", "owner_id"):
                self._remember_gateway(gateway_id, owner_id)
        owners = {self._owner_of[g] for g in wanted if g in self._owner_of}
        if not owners:
            return
        versions = dict(await User.filter(id__in=list(owners)).values_list("id", "routing_version"))
        stale = []
        for owner_id in owners:
            cached = self._owners.get(owner_id)
            if owner_id not in versions:
                self._owners.pop(owner_id, None)
            elif cached is None or cached.version != versions[owner_id]:
                stale.append(owner_id)
        if stale:
            await self._load(stale)

    async def for_gateway(self, gateway_id: str) -> OwnerRoutes | None:
        """The routes of an active gateway's owner (None when the gateway is not active)."""
        owner_id = self._owner_of.get(gateway_id)
        if owner_id is None:
            await self.refresh([gateway_id])
            owner_id = self._owner_of.get(gateway_id)
            if owner_id is None:
                return None
        routes = self._owners.get(owner_id)
        if routes is None:
            routes = (await self._load([owner_id])).get(owner_id)
        else:
            self._owners.move_to_end(owner_id)
        if routes is None or gateway_id not in routes.active_gateways:
            return None
        return routes

    def forget(self, owner_id: str) -> None:
        self._owners.pop(owner_id, None)

    def _remember_gateway(self, gateway_id: str, owner_id: str) -> None:
        self._owner_of[gateway_id] = owner_id
        while len(self._owner_of) > MAX_GATEWAYS:
            self._owner_of.popitem(last=False)

    async def _load(self, owner_ids: list[str]) -> dict[str, OwnerRoutes]:
        """Loads these owners' routes (in one go), keeps those that exist, forgets the others."""
        loaded = await load_owners(owner_ids)
        for owner_id in owner_ids:
            routes = loaded.get(owner_id)
            if routes is None:
                self._owners.pop(owner_id, None)
                continue
            self._owners[owner_id] = routes
            self._owners.move_to_end(owner_id)
        while len(self._owners) > self.max_owners:
            self._owners.popitem(last=False)
        return loaded
