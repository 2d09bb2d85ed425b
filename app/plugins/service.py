"""Installs: install, configure, turn on and off, uninstall, and the states that follow, for one
service context at a time. The catalogue is app/plugins/catalog.py; runs are app/plugins/run_history.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import timezone
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app import live
from app.accounts.context import ServiceContext
from app.accounts.models import User
from app.audit import writes as audit
from app.errors import (
    AlreadyInstalled,
    BadUserInput,
    NotFound,
    NotInstalled,
    PlanLimitReached,
    PluginFailed,
    Unauthenticated,
)
from app.ids import new_id
from app.plugins import secrets, states
from app.plugins.config import validate_config
from app.plugins.contract import ConfigUpdateRequest, InstallRequest
from app.plugins.executor import Executor
from app.plugins.gateway_needs import missing_gateways_of
from app.plugins.models import InstallStatus, Plugin, UserPlugin
from app.plugins.reads import InstallRead, installs_with_plugins
from app.plugins.sealed_config import open_config, seal_config
from app.plugins.versions import bring_forward
from app.settings import Settings


class PluginService:
    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        installs_changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.executor = executor
        # Called with the user's id after an install, uninstall or toggle (to re-register webhooks).
        self.installs_changed = installs_changed

    # --- installs ----------------------------------------------------------------------

    async def my_installs(self, ctx: ServiceContext) -> list[InstallRead]:
        return await installs_with_plugins(ctx.user_id)

    async def find_install(self, ctx: ServiceContext, plugin_id: str) -> UserPlugin | None:
        return await UserPlugin.get_or_none(user_id=ctx.user_id, plugin_id=plugin_id).select_related("plugin")

    async def install(self, ctx: ServiceContext, request: InstallRequest) -> UserPlugin:
        plugin = await Plugin.get_or_none(id=request.plugin_id, is_active=True)
        if plugin is None:
            raise NotFound("No such plugin")
        # The cheap refusals first: an install that cannot happen never pays for validating its config.
        await self._check_room(ctx, plugin, ctx.plan.value)
        config = validate_config(plugin.config_schema, secrets.merge_update(plugin.config_schema, None, request.config))
        missing, refused = await missing_gateways_of(ctx.user_id, plugin.required_gateways)
        target = states.settled(True, None, missing, refused)
        try:
            async with in_transaction():
                # Lock the user row: concurrent installs of one user queue here, so the count holds.
                user = await User.filter(id=ctx.user_id).select_for_update().first()
                if user is None:
                    raise Unauthenticated("Unknown user")
                # The plan as the locked row has it: a token's context may be a cached second old
                # (app/accounts/token_cache.py), and a plan changed meanwhile is the one that holds.
                await self._check_room(ctx, plugin, user.plan.value)
                install_id = new_id()
                install = await UserPlugin.create(
                    id=install_id,
                    user_id=ctx.user_id,
                    plugin=plugin,
                    config=seal_config(install_id, plugin.config_schema, config),
                    config_version=plugin.version,
                    status=target.status,
                    status_reason=target.reason,
                )
                await states.routing_changed([ctx.user_id])
        except IntegrityError:
            raise AlreadyInstalled("The plugin is installed already") from None
        try:
            await self._hook(install, "on_install", ctx)
        except Exception:
            await UserPlugin.filter(id=install.id).delete()
            await states.routing_changed([ctx.user_id])
            raise
        metadata = {"slug": plugin.slug, "status": target.status.value}
        await audit.record(ctx, "plugin.install", "plugin", plugin.id, metadata)
        await self._installs_changed(ctx)
        return install

    async def _installs_changed(self, ctx: ServiceContext) -> None:
        if self.installs_changed is not None:
            await self.installs_changed(ctx.user_id)

    async def _check_room(self, ctx: ServiceContext, plugin: Plugin, plan: str) -> None:
        if await UserPlugin.exists(user_id=ctx.user_id, plugin_id=plugin.id):
            raise AlreadyInstalled("The plugin is installed already")
        limit = self.settings.plan_limit(plan)
        if limit is not None and await UserPlugin.filter(user_id=ctx.user_id).count() >= limit:
            raise PlanLimitReached(f"The {plan} plan allows {limit} plugin(s)")

    # Each change below is a conditional write that counts the rows it touched: of several
    # concurrent calls on one install, only those that found it change it, and an install
    # deleted meanwhile is NOT_INSTALLED, never "updated".

    async def uninstall(self, ctx: ServiceContext, plugin_id: str) -> bool:
        install = await self._install_of(ctx, plugin_id)
        hook_error = await self._stopping_hook(ctx, install, "on_uninstall")
        async with in_transaction():
            if not await UserPlugin.filter(id=install.id).delete():
                raise NotInstalled("The plugin is not installed")  # another call uninstalled it first
            metadata = {"slug": install.plugin.slug, **({"hookError": hook_error} if hook_error else {})}
            await audit.record(ctx, "plugin.uninstall", "plugin", plugin_id, metadata)
            await states.routing_changed([ctx.user_id])
        await self._installs_changed(ctx)
        return True

    async def update_config(self, ctx: ServiceContext, request: ConfigUpdateRequest) -> UserPlugin:
        """Replaces the config (secrets left out are kept). A valid config also ends NEEDS_CONFIG,
        and closes an open circuit breaker: the user changed what the plugin runs with."""
        install = await self._install_of(ctx, request.plugin_id)
        plugin = install.plugin
        stored = open_config(install.id, install.config, drop_unreadable=True)  # one altered is asked for again
        incoming = secrets.merge_update(plugin.config_schema, stored, request.config)
        config = validate_config(plugin.config_schema, incoming)
        now = timezone.now()
        sealed = seal_config(install.id, plugin.config_schema, config)
        changes: dict[str, Any] = {"config": sealed, "config_version": plugin.version, "updated_at": now}
        async with in_transaction():
            if install.status in (InstallStatus.NEEDS_CONFIG, InstallStatus.FAILING):
                missing, refused = await missing_gateways_of(ctx.user_id, plugin.required_gateways)
                target = states.settled(install.is_enabled, None, missing, refused)
                changed = await states.change(install, target, "config updated", plugin.slug, **changes)
            else:
                changed = bool(await UserPlugin.filter(id=install.id, status=install.status).update(**changes))
                if changed:
                    await states.routing_changed([ctx.user_id])
            if not changed:  # uninstalled, or its state changed meanwhile: nothing written
                if not await UserPlugin.exists(id=install.id):
                    raise NotInstalled("The plugin is not installed")
                raise BadUserInput("The install changed meanwhile; read it again and retry")
            metadata: dict[str, Any] = {"slug": plugin.slug}
            if changed_secrets := secrets.changed_secrets(plugin.config_schema, stored, config):
                metadata["secretsChanged"] = changed_secrets
            await audit.record(ctx, "plugin.config_update", "plugin", request.plugin_id, metadata)
        for name, value in changes.items():
            setattr(install, name, value)
        self.executor.announce(ctx.user_id, plugin.slug, live.CONFIG_TOPIC)  # live views that depend on it
        await self._installs_changed(ctx)
        return install

    async def toggle(self, ctx: ServiceContext, plugin_id: str, enabled: bool) -> UserPlugin:
        install = await self._install_of(ctx, plugin_id)
        if install.is_enabled == enabled:
            return install
        plugin = install.plugin
        metadata: dict[str, object] = {"slug": plugin.slug, "enabled": enabled}
        changes: dict[str, Any] = {"is_enabled": enabled}
        if enabled:
            await self._hook(install, "on_enable", ctx)
            missing, refused = await missing_gateways_of(ctx.user_id, plugin.required_gateways)
            config, problem = bring_forward(install, plugin, self.executor.registry.get(plugin.slug))
            if config is not None and (config != install.config or install.config_version != plugin.version):
                changes.update(config=config, config_version=plugin.version)
            target = states.settled(True, problem, missing, refused)
        else:
            target = states.settled(False, None, set())
            if hook_error := await self._stopping_hook(ctx, install, "on_disable"):
                changes["last_error"] = hook_error
                metadata["hookError"] = hook_error
        async with in_transaction():
            changed = await states.change(
                install, target, "enabled by its user" if enabled else "disabled by its user", plugin.slug, **changes
            )
            if changed:
                await audit.record(ctx, "plugin.toggle", "plugin", plugin_id, metadata)
        if not changed:
            # Uninstalled meanwhile, or another call changed it first (and recorded it).
            return await self._install_of(ctx, plugin_id)
        await self._installs_changed(ctx)
        return install

    async def _hook(self, install: UserPlugin, hook: str, ctx: ServiceContext) -> None:
        try:
            await self.executor.run_hook(install, hook, ctx)
        except IntegrityError:
            # The hook's storage writes point at the install: they fail when it was just uninstalled.
            if not await UserPlugin.exists(id=install.id):
                raise NotInstalled("The plugin is not installed") from None
            raise

    async def _stopping_hook(self, ctx: ServiceContext, install: UserPlugin, hook: str) -> str | None:
        """Runs on_disable or on_uninstall. Their failure never keeps a plugin running: it is
        returned, to be recorded, and the operation goes ahead."""
        try:
            await self._hook(install, hook, ctx)
        except PluginFailed as exc:
            return exc.message
        return None

    async def _install_of(self, ctx: ServiceContext, plugin_id: str) -> UserPlugin:
        if not await Plugin.exists(id=plugin_id):
            raise NotFound("No such plugin")
        install = await UserPlugin.get_or_none(user_id=ctx.user_id, plugin_id=plugin_id).select_related("plugin")
        if install is None:
            raise NotInstalled("The plugin is not installed")
        return install
