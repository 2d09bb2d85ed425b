"""A user's deletion: their plugins uninstalled (each one's on_uninstall hook runs, as for an
uninstall of theirs), their bots disconnected (webhooks deleted), then their row, which takes every
row of theirs with it (tokens, gateways and their events, installs with their storage, runs and
analytics, the audit log: every foreign key to a user cascades). Their open websockets close in
every process (app/accounts/sessions.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from app.accounts.auth_version import raise_version
from app.accounts.context import ServiceContext
from app.accounts.models import ApiToken, Plan, User
from app.errors import NotFound, NotInstalled
from app.gateways.models import Gateway
from app.plugins.models import UserPlugin

if TYPE_CHECKING:
    from app.accounts.service import AccountService
    from app.gateways.service import GatewayService
    from app.plugins.service import PluginService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Footprint:
    """What a deletion would take: shown before it asks for confirmation, and reported after."""

    user_id: str
    email: str
    plugins: list[str]  # the slugs of their installs
    bots: int  # their connected (active) gateways
    tokens: list[str]  # the ids of all their tokens, revoked ones too


async def footprint(accounts: AccountService, email: str) -> Footprint:
    user = await accounts.find_user(email)
    installs = await UserPlugin.filter(user_id=user.id).order_by("created_at").values_list("plugin__slug", flat=True)
    return Footprint(
        user_id=user.id,
        email=user.email,
        plugins=[str(slug) for slug in installs],
        bots=await Gateway.filter(owner_id=user.id, is_active=True).count(),
        tokens=[str(i) for i in await ApiToken.filter(user_id=user.id).values_list("id", flat=True)],
    )


async def delete_user(
    email: str, accounts: AccountService, plugins: PluginService, gateways: GatewayService
) -> Footprint:
    """Deletes the user and everything of theirs; returns what was there. Their sockets are the
    caller's to end (the notice goes where the caller's pub/sub reaches)."""
    user = await accounts.find_user(email)
    before = await footprint(accounts, user.email)
    ctx = ServiceContext(user_id=user.id, plan=Plan(user.plan))
    for plugin_id in await UserPlugin.filter(user_id=user.id).values_list("plugin_id", flat=True):
        try:
            await plugins.uninstall(ctx, str(plugin_id))
        except (NotInstalled, NotFound):  # uninstalled meanwhile
            pass
    for gateway_id in await Gateway.filter(owner_id=user.id, is_active=True).values_list("id", flat=True):
        try:
            await gateways.disconnect(ctx, str(gateway_id))
        except NotFound:  # disconnected meanwhile
            pass
    async with in_transaction() as conn:
        if not await User.filter(id=user.id).delete():
            raise NotFound(f"No user with the email {user.email}")
        await raise_version(conn)  # its tokens are gone: every process's cache forgets them
    log.info("user %s deleted", user.id)
    return before
